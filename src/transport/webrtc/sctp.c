/* SCTP association and data channels over usrsctp (sctp.h). */
#include "transport/webrtc/sctp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <usrsctp.h>

#include "core/mem.h"
#include "flare/buf.h"

#define TICK      ((flare_tstamp)10000000) /* usrsctp's timers advance in 10 ms steps */
#define MAX_OUT   512                      /* packets waiting for DTLS */
#define DCEP_OPEN 0x03
#define DCEP_ACK  0x02

enum { CH_FREE, CH_OPEN, CH_CLOSING };

typedef struct chan {
    uint8_t state;
    uint8_t out_req;   /* the reset of our outgoing stream is asked for */
    uint8_t out_reset; /* and done */
    uint8_t in_reset;  /* the peer's is */
    uint8_t dropping;  /* the rest of an oversized message is discarded */
} chan;

struct flare__sctp {
    const flare_mem *mem;
    struct socket *sock;
    struct flare__sctp *next_live;
    int is_client, up, down, err, want_write;
    /* Input or a tick since the send buffer was found full: only these
     * free room (SACKs, retransmission timers). EVENT_WRITE alone means
     * some room, maybe less than the message that did not fit: reporting
     * WRITABLE on it would make the writer retry at once, forever. */
    int may_write;
    /* Room again after a failed send: a flag, not a queued event, so that
     * it overtakes messages the reader is not taking yet (a writer that
     * reads only once its writes went through would wait for it behind
     * them forever). */
    int writable;
    uint16_t max_channels, next_id, first_id;
    size_t max_message, nchan;
    chan *chans;
    /* Packets for DTLS: [u16 len][bytes]. */
    flare_buf out;
    size_t nout;
    /* Events: [u8 type][u16 id][i32 error][u32 len][bytes]. */
    flare_buf ev;
    /* A message arriving in pieces (partial delivery). */
    flare_buf part;
    flare_tstamp next_tick;
};

/* ---- the process-wide stack -------------------------------------------------------- */

static int g_inited;
static flare__sctp *g_live;
static uint64_t g_clock_ms;
static int g_clock_set;

static int is_live(const void *addr)
{
    for (flare__sctp *s = g_live; s != NULL; s = s->next_live)
        if (s == addr)
            return 1;
    return 0;
}

static int conn_output(void *addr, void *buf, size_t len, uint8_t tos, uint8_t set_df)
{
    flare__sctp *s = addr;
    if (!is_live(addr) || s->nout >= MAX_OUT || len > 0xffff)
        return 0; /* lost, as on a network */
    uint8_t h[2] = {(uint8_t)(len >> 8), (uint8_t)len};
    if (flare_buf_reserve(&s->out, len + 2) != 0)
        return 0;
    flare_buf_append(&s->out, h, 2);
    flare_buf_append(&s->out, buf, len);
    s->nout++;
    return 0;
}

static void stack_init(void)
{
    if (g_inited)
        return;
    usrsctp_init_nothreads(0, conn_output, NULL);
    usrsctp_sysctl_set_sctp_ecn_enable(0);
    /* Data channels need stream resets (RFC 8831 6.7). */
    usrsctp_sysctl_set_sctp_reconfig_enable(1);
    g_inited = 1;
}

static void advance_clock(flare_tstamp now)
{
    uint64_t ms = now / 1000000;
    if (!g_clock_set) {
        g_clock_ms = ms;
        g_clock_set = 1;
        return;
    }
    if (ms > g_clock_ms) {
        uint64_t d = ms - g_clock_ms;
        usrsctp_handle_timers(d > 60000 ? 60000 : (uint32_t)d);
        g_clock_ms = ms;
    }
}

/* ---- events ------------------------------------------------------------------------ */

static int push_event(flare__sctp *s, flare__sctp_event_type t, uint16_t id, int error,
                      const uint8_t *data, size_t len)
{
    uint8_t h[11];
    h[0] = (uint8_t)t;
    h[1] = (uint8_t)(id >> 8), h[2] = (uint8_t)id;
    uint32_t e = (uint32_t)error, l = (uint32_t)len;
    for (int i = 0; i < 4; i++) {
        h[3 + i] = (uint8_t)(e >> (24 - 8 * i));
        h[7 + i] = (uint8_t)(l >> (24 - 8 * i));
    }
    if (flare_buf_reserve(&s->ev, sizeof(h) + len) != 0)
        return FLARE_ERR_NOMEM;
    flare_buf_append(&s->ev, h, sizeof(h));
    if (len > 0)
        flare_buf_append(&s->ev, data, len);
    return 0;
}

static void go_down(flare__sctp *s, int err)
{
    if (s->down)
        return;
    s->down = 1;
    s->up = 0;
    s->err = err;
    push_event(s, FLARE__SCTP_EV_DOWN, 0, err, NULL, 0);
}

/* ---- channels ----------------------------------------------------------------------- */

static int peer_id(const flare__sctp *s, uint16_t id)
{
    /* The DTLS client's channels are even (RFC 8832 6). */
    return (id % 2 == 0) != (s->is_client != 0);
}

/* Asks SCTP to reset the outgoing streams of closing channels, all in one
 * request: SCTP allows one outstanding request at a time, so ids that
 * could not go now go with the next try (after the answer, or a tick). */
static void flush_resets(flare__sctp *s)
{
    if (!s->up || s->sock == NULL)
        return;
    size_t k = 0;
    for (uint16_t i = 0; i < s->max_channels; i++)
        k += s->chans[i].state == CH_CLOSING && !s->chans[i].out_req && !s->chans[i].out_reset;
    if (k == 0)
        return;
    size_t sz = sizeof(struct sctp_reset_streams) + k * sizeof(uint16_t);
    struct sctp_reset_streams *rs = flare__calloc(s->mem, 1, sz);
    if (rs == NULL)
        return;
    rs->srs_flags = SCTP_STREAM_RESET_OUTGOING;
    rs->srs_number_streams = (uint16_t)k;
    k = 0;
    for (uint16_t i = 0; i < s->max_channels; i++)
        if (s->chans[i].state == CH_CLOSING && !s->chans[i].out_req && !s->chans[i].out_reset)
            rs->srs_stream_list[k++] = i;
    if (usrsctp_setsockopt(s->sock, IPPROTO_SCTP, SCTP_RESET_STREAMS, rs, (socklen_t)sz) == 0)
        for (size_t j = 0; j < k; j++)
            s->chans[rs->srs_stream_list[j]].out_req = 1;
    flare__free(s->mem, rs);
}

static void reset_out(flare__sctp *s, uint16_t id)
{
    chan *c = &s->chans[id];
    if (c->state == CH_FREE)
        return;
    c->state = CH_CLOSING;
    flush_resets(s);
}

static void channel_gone_check(flare__sctp *s, uint16_t id)
{
    chan *c = &s->chans[id];
    if (c->state != CH_FREE && c->out_reset && c->in_reset) {
        memset(c, 0, sizeof(*c));
        s->nchan--;
        push_event(s, FLARE__SCTP_EV_CHANNEL_CLOSED, id, 0, NULL, 0);
    }
}

static int send_raw(flare__sctp *s, uint16_t id, uint32_t ppid, const uint8_t *data, size_t len)
{
    struct sctp_sndinfo si;
    memset(&si, 0, sizeof(si));
    si.snd_sid = id;
    si.snd_flags = SCTP_EOR;
    si.snd_ppid = htonl(ppid);
    ssize_t n = usrsctp_sendv(s->sock, data, len, NULL, 0, &si, sizeof(si), SCTP_SENDV_SNDINFO, 0);
    if (n < 0) {
        if (errno == EWOULDBLOCK || errno == EAGAIN || errno == ENOBUFS) {
            s->want_write = 1;
            s->may_write = 0;
            return FLARE_ERR_AGAIN;
        }
        return FLARE_ERR_STATE;
    }
    return 0;
}

static void on_dcep(flare__sctp *s, uint16_t id, const uint8_t *m, size_t len)
{
    if (len < 1)
        return;
    if (m[0] == DCEP_ACK)
        return; /* ordered channels may carry data before the ACK anyway */
    if (m[0] != DCEP_OPEN || len < 12)
        return;
    size_t llen = ((size_t)m[8] << 8) | m[9], plen = ((size_t)m[10] << 8) | m[11];
    if (12 + llen + plen > len)
        return;
    chan *c = &s->chans[id];
    if (c->state != CH_FREE || !peer_id(s, id)) {
        /* An id that is ours or taken: refuse by resetting the stream. */
        if (c->state == CH_FREE) {
            c->state = CH_OPEN;
            s->nchan++;
            c->in_reset = 0;
            reset_out(s, id);
        }
        return;
    }
    c->state = CH_OPEN;
    s->nchan++;
    uint8_t ack = DCEP_ACK;
    (void)send_raw(s, id, FLARE__SCTP_PPID_DCEP, &ack, 1);
    push_event(s, FLARE__SCTP_EV_CHANNEL_OPEN, id, 0, m + 12, llen); /* its label */
}

static void on_message(flare__sctp *s, uint16_t id, uint32_t ppid, const uint8_t *m, size_t len)
{
    if (id >= s->max_channels)
        return;
    if (ppid == FLARE__SCTP_PPID_DCEP) {
        on_dcep(s, id, m, len);
        return;
    }
    chan *c = &s->chans[id];
    if (c->state != CH_OPEN)
        return; /* data on a channel never opened or closing: dropped */
    if (ppid == FLARE__SCTP_PPID_BINARY_EMPTY || ppid == FLARE__SCTP_PPID_STRING_EMPTY)
        len = 0;
    else if (ppid != FLARE__SCTP_PPID_BINARY && ppid != FLARE__SCTP_PPID_STRING)
        return;
    push_event(s, FLARE__SCTP_EV_MESSAGE, id, 0, m, len);
}

/* ---- notifications ---------------------------------------------------------------- */

static void on_notification(flare__sctp *s, const uint8_t *p, size_t len)
{
    const union sctp_notification *n = (const void *)p;
    if (len < sizeof(n->sn_header))
        return;
    switch (n->sn_header.sn_type) {
    case SCTP_ASSOC_CHANGE:
        if (len < sizeof(n->sn_assoc_change))
            return;
        switch (n->sn_assoc_change.sac_state) {
        case SCTP_COMM_UP:
            if (!s->up && !s->down) {
                s->up = 1;
                push_event(s, FLARE__SCTP_EV_UP, 0, 0, NULL, 0);
            }
            break;
        case SCTP_COMM_LOST:
        case SCTP_CANT_STR_ASSOC:
            go_down(s, FLARE_ERR_RESET);
            break;
        case SCTP_SHUTDOWN_COMP:
            go_down(s, FLARE_ERR_CLOSED);
            break;
        default:
            break;
        }
        break;
    case SCTP_SHUTDOWN_EVENT:
        /* The peer shut the association down: no more data either way
         * once SCTP acknowledged it, so the end is now, not at a timeout. */
        go_down(s, FLARE_ERR_CLOSED);
        break;
    case SCTP_STREAM_RESET_EVENT: {
        const struct sctp_stream_reset_event *e = &n->sn_strreset_event;
        if (len < sizeof(*e) || e->strreset_length > len)
            return;
        size_t k = (e->strreset_length - sizeof(*e)) / sizeof(uint16_t);
        for (size_t i = 0; i < k; i++) {
            uint16_t id = e->strreset_stream_list[i];
            if (id >= s->max_channels || s->chans[id].state == CH_FREE)
                continue;
            if (e->strreset_flags & SCTP_STREAM_RESET_INCOMING_SSN) {
                s->chans[id].in_reset = 1;
                reset_out(s, id); /* the peer closed: close ours (RFC 8831 6.7) */
            }
            if (e->strreset_flags & SCTP_STREAM_RESET_OUTGOING_SSN) {
                if (e->strreset_flags & (SCTP_STREAM_RESET_DENIED | SCTP_STREAM_RESET_FAILED))
                    s->chans[id].out_req = 0; /* asked again below */
                else
                    s->chans[id].out_reset = 1;
            }
            channel_gone_check(s, id);
        }
        break;
    }
    default:
        break;
    }
}

/* Reads what usrsctp has for us while the event queue has room (beyond it,
 * the receive window holds the peer back). */
static void drain(flare__sctp *s)
{
    uint8_t buf[FLARE__SCTP_MAX_MESSAGE + 1024];
    while (s->ev.len < FLARE__SCTP_MAX_RECV_BUFFERED && s->sock != NULL) {
        struct sctp_rcvinfo ri;
        socklen_t ilen = sizeof(ri);
        unsigned itype = 0;
        int flags = 0;
        memset(&ri, 0, sizeof(ri));
        ssize_t n =
            usrsctp_recvv(s->sock, buf, sizeof(buf), NULL, NULL, &ri, &ilen, &itype, &flags);
        if (n < 0)
            break;
        if (n == 0) {
            go_down(s, FLARE_ERR_CLOSED);
            break;
        }
        if (flags & MSG_NOTIFICATION) {
            on_notification(s, buf, (size_t)n);
            continue;
        }
        uint16_t id = ri.rcv_sid;
        int eor = (flags & MSG_EOR) != 0;
        if (id < s->max_channels && s->chans[id].dropping) {
            if (eor)
                s->chans[id].dropping = 0;
            continue;
        }
        if (!eor || s->part.len > 0) {
            if (s->part.len + (size_t)n > s->max_message) {
                /* Oversized: the channel is closed, its data dropped. */
                flare_buf_reset(&s->part);
                if (id < s->max_channels && s->chans[id].state == CH_OPEN) {
                    s->chans[id].dropping = !eor;
                    reset_out(s, id);
                }
                continue;
            }
            if (flare_buf_append(&s->part, buf, (size_t)n) != 0) {
                go_down(s, FLARE_ERR_NOMEM);
                break;
            }
            if (!eor)
                continue;
            on_message(s, id, ntohl(ri.rcv_ppid), s->part.base, s->part.len);
            flare_buf_reset(&s->part);
            continue;
        }
        if ((size_t)n > s->max_message) {
            if (id < s->max_channels && s->chans[id].state == CH_OPEN)
                reset_out(s, id);
            continue;
        }
        on_message(s, id, ntohl(ri.rcv_ppid), buf, (size_t)n);
    }
    flush_resets(s);
    if (s->want_write && s->may_write && s->sock != NULL &&
        (usrsctp_get_events(s->sock) & SCTP_EVENT_WRITE)) {
        s->want_write = 0;
        s->may_write = 0;
        s->writable = 1;
    }
}

/* ---- association ----------------------------------------------------------------------- */

static int sockopts(flare__sctp *s, size_t mtu)
{
    struct socket *so = s->sock;
    int on = 1;
    struct linger lg = {1, 0};
    struct sctp_assoc_value av = {0};
    av.assoc_value = SCTP_ENABLE_RESET_STREAM_REQ;
    struct sctp_initmsg im = {0};
    im.sinit_num_ostreams = s->max_channels;
    im.sinit_max_instreams = s->max_channels;
    int sndbuf = FLARE__SCTP_SEND_BUFFER, rcvbuf = FLARE__SCTP_MAX_RECV_BUFFERED;
    if (usrsctp_set_non_blocking(so, 1) != 0 ||
        usrsctp_setsockopt(so, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) != 0 ||
        usrsctp_setsockopt(so, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) != 0 ||
        usrsctp_setsockopt(so, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) != 0 ||
        usrsctp_setsockopt(so, IPPROTO_SCTP, SCTP_RECVRCVINFO, &on, sizeof(on)) != 0 ||
        usrsctp_setsockopt(so, IPPROTO_SCTP, SCTP_NODELAY, &on, sizeof(on)) != 0 ||
        usrsctp_setsockopt(so, IPPROTO_SCTP, SCTP_ENABLE_STREAM_RESET, &av, sizeof(av)) != 0 ||
        usrsctp_setsockopt(so, IPPROTO_SCTP, SCTP_INITMSG, &im, sizeof(im)) != 0)
        return FLARE_ERR_INTERNAL;
    static const uint16_t evs[] = {SCTP_ASSOC_CHANGE, SCTP_STREAM_RESET_EVENT, SCTP_SHUTDOWN_EVENT};
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
        struct sctp_event e = {0};
        e.se_assoc_id = SCTP_ALL_ASSOC;
        e.se_type = evs[i];
        e.se_on = 1;
        if (usrsctp_setsockopt(so, IPPROTO_SCTP, SCTP_EVENT, &e, sizeof(e)) != 0)
            return FLARE_ERR_INTERNAL;
    }
    (void)mtu;
    return 0;
}

static void set_mtu(flare__sctp *s, size_t mtu)
{
    struct sctp_paddrparams pp;
    memset(&pp, 0, sizeof(pp));
    struct sockaddr_conn *sc = (struct sockaddr_conn *)&pp.spp_address;
    sc->sconn_family = AF_CONN;
    sc->sconn_port = htons(FLARE__SCTP_PORT);
    sc->sconn_addr = s;
    pp.spp_flags = SPP_PMTUD_DISABLE;
    /* usrsctp's AF_CONN packets are the path MTU plus the 12-byte common
     * header, and it keeps the MTU a multiple of 4. */
    pp.spp_pathmtu = (uint32_t)((mtu - 12) & ~(size_t)3);
    (void)usrsctp_setsockopt(s->sock, IPPROTO_SCTP, SCTP_PEER_ADDR_PARAMS, &pp, sizeof(pp));
}

int flare__sctp_new(flare__sctp **out, const flare__sctp_cfg *cfg, flare_tstamp now)
{
    if (out == NULL || cfg == NULL)
        return FLARE_ERR_INVALID_ARG;
    stack_init();
    advance_clock(now);
    flare__sctp *s = flare__calloc(cfg->mem, 1, sizeof(*s));
    if (s == NULL)
        return FLARE_ERR_NOMEM;
    s->mem = cfg->mem;
    s->is_client = cfg->is_dtls_client;
    s->max_channels = cfg->max_channels ? cfg->max_channels : FLARE__SCTP_MAX_CHANNELS;
    s->max_message = cfg->max_message ? cfg->max_message : FLARE__SCTP_MAX_MESSAGE;
    if (s->max_message > FLARE__SCTP_MAX_MESSAGE)
        s->max_message = FLARE__SCTP_MAX_MESSAGE;
    s->first_id = s->is_client ? (cfg->use_ch0 ? 0 : 2) : 1;
    s->next_id = s->first_id;
    flare_buf_init(&s->out, cfg->mem);
    flare_buf_init(&s->ev, cfg->mem);
    flare_buf_init(&s->part, cfg->mem);
    s->chans = flare__calloc(cfg->mem, s->max_channels, sizeof(chan));
    if (s->chans == NULL) {
        flare__free(cfg->mem, s);
        return FLARE_ERR_NOMEM;
    }
    s->next_live = g_live;
    g_live = s;
    usrsctp_register_address(s);
    s->sock = usrsctp_socket(AF_CONN, SOCK_STREAM, IPPROTO_SCTP, NULL, NULL, 0, NULL);
    int rc = s->sock == NULL ? FLARE_ERR_NOMEM : sockopts(s, cfg->mtu);
    if (rc == 0) {
        struct sockaddr_conn sc;
        memset(&sc, 0, sizeof(sc));
        sc.sconn_family = AF_CONN;
        sc.sconn_port = htons(FLARE__SCTP_PORT);
        sc.sconn_addr = s;
        if (usrsctp_bind(s->sock, (struct sockaddr *)&sc, sizeof(sc)) != 0)
            rc = FLARE_ERR_INTERNAL;
        else if (usrsctp_connect(s->sock, (struct sockaddr *)&sc, sizeof(sc)) != 0 &&
                 errno != EINPROGRESS)
            rc = FLARE_ERR_INTERNAL;
    }
    if (rc != 0) {
        flare__sctp_del(s);
        return rc;
    }
    set_mtu(s, cfg->mtu ? cfg->mtu : 1150);
    s->next_tick = now + TICK;
    *out = s;
    return 0;
}

void flare__sctp_del(flare__sctp *s)
{
    if (s == NULL)
        return;
    if (s->sock != NULL)
        usrsctp_close(s->sock); /* SO_LINGER 0: an ABORT, then gone */
    usrsctp_deregister_address(s);
    for (flare__sctp **pp = &g_live; *pp != NULL; pp = &(*pp)->next_live)
        if (*pp == s) {
            *pp = s->next_live;
            break;
        }
    flare_buf_free(&s->out);
    flare_buf_free(&s->ev);
    flare_buf_free(&s->part);
    flare__free(s->mem, s->chans);
    flare__free(s->mem, s);
}

void flare__sctp_input(flare__sctp *s, const uint8_t *pkt, size_t len, flare_tstamp now)
{
    advance_clock(now);
    if (s->down || len < 12)
        return;
    usrsctp_conninput(s, pkt, len, 0);
    s->may_write = 1;
    drain(s);
}

long flare__sctp_pop_out(flare__sctp *s, uint8_t *dst, size_t cap)
{
    if (s->nout == 0)
        return FLARE_ERR_AGAIN;
    size_t len = ((size_t)s->out.base[0] << 8) | s->out.base[1];
    if (len > cap)
        return FLARE_ERR_BUFFER_TOO_SMALL;
    memcpy(dst, s->out.base + 2, len);
    flare_buf_consume(&s->out, len + 2);
    s->nout--;
    return (long)len;
}

int flare__sctp_take_writable(flare__sctp *s)
{
    int w = s->writable;
    s->writable = 0;
    return w;
}

int flare__sctp_poll(flare__sctp *s, flare__sctp_event *ev, uint8_t *buf, size_t cap)
{
    if (s->ev.len == 0)
        drain(s);
    if (flare__sctp_take_writable(s)) {
        memset(ev, 0, sizeof(*ev));
        ev->type = FLARE__SCTP_EV_WRITABLE;
        return 1;
    }
    if (s->ev.len == 0)
        return 0;
    const uint8_t *h = s->ev.base;
    uint32_t e = 0, l = 0;
    for (int i = 0; i < 4; i++) {
        e = (e << 8) | h[3 + i];
        l = (l << 8) | h[7 + i];
    }
    memset(ev, 0, sizeof(*ev));
    ev->type = (flare__sctp_event_type)h[0];
    ev->id = (uint16_t)((h[1] << 8) | h[2]);
    ev->error = (int)e;
    ev->len = l <= cap ? l : cap;
    if (ev->len > 0)
        memcpy(buf, h + 11, ev->len);
    flare_buf_consume(&s->ev, 11 + (size_t)l);
    return 1;
}

flare_tstamp flare__sctp_expiry(const flare__sctp *s)
{
    return s->down ? FLARE_TSTAMP_NEVER : s->next_tick;
}

void flare__sctp_handle_expiry(flare__sctp *s, flare_tstamp now)
{
    if (now < s->next_tick)
        return;
    advance_clock(now);
    s->next_tick = now + TICK;
    s->may_write = 1;
    drain(s);
}

void flare__sctp_shutdown(flare__sctp *s, int abort)
{
    if (s->sock == NULL || s->down)
        return;
    if (abort) {
        usrsctp_close(s->sock); /* SO_LINGER 0: the ABORT is queued for DTLS */
        s->sock = NULL;
    } else {
        (void)usrsctp_shutdown(s->sock, SHUT_WR); /* SHUTDOWN once the data is acknowledged */
    }
    go_down(s, abort ? FLARE_ERR_RESET : FLARE_ERR_CLOSED);
}

int flare__sctp_is_up(const flare__sctp *s)
{
    return s->up;
}

int flare__sctp_open_channel(flare__sctp *s, uint16_t *id, const char *label, const char *protocol)
{
    if (!s->up)
        return FLARE_ERR_STATE;
    if (s->nchan >= s->max_channels)
        return FLARE_ERR_LIMIT;
    uint16_t start = s->next_id, i = start;
    while (s->chans[i].state != CH_FREE) {
        i = (uint16_t)(i + 2);
        if (i >= s->max_channels)
            i = s->first_id;
        if (i == start)
            return FLARE_ERR_LIMIT;
    }
    size_t ll = label ? strlen(label) : 0, pl = protocol ? strlen(protocol) : 0;
    if (12 + ll + pl > s->max_message)
        return FLARE_ERR_TOO_LARGE;
    uint8_t m[FLARE__SCTP_MAX_MESSAGE];
    memset(m, 0, 12);
    m[0] = DCEP_OPEN;
    m[1] = 0x00; /* reliable, ordered */
    m[8] = (uint8_t)(ll >> 8), m[9] = (uint8_t)ll;
    m[10] = (uint8_t)(pl >> 8), m[11] = (uint8_t)pl;
    if (ll)
        memcpy(m + 12, label, ll);
    if (pl)
        memcpy(m + 12 + ll, protocol, pl);
    int rc = send_raw(s, i, FLARE__SCTP_PPID_DCEP, m, 12 + ll + pl);
    if (rc != 0)
        return rc;
    s->chans[i].state = CH_OPEN;
    s->nchan++;
    uint16_t nx = (uint16_t)(i + 2);
    s->next_id = nx >= s->max_channels ? s->first_id : nx;
    *id = i;
    return 0;
}

int flare__sctp_open_negotiated(flare__sctp *s, uint16_t id)
{
    if (id >= s->max_channels)
        return FLARE_ERR_OUT_OF_RANGE;
    if (s->chans[id].state != CH_FREE)
        return FLARE_ERR_EXISTS;
    s->chans[id].state = CH_OPEN;
    s->nchan++;
    return 0;
}

int flare__sctp_send(flare__sctp *s, uint16_t id, const uint8_t *data, size_t len)
{
    if (!s->up)
        return FLARE_ERR_STATE;
    if (id >= s->max_channels || s->chans[id].state != CH_OPEN)
        return FLARE_ERR_NOT_FOUND;
    if (len > s->max_message)
        return FLARE_ERR_TOO_LARGE;
    if (len == 0) {
        uint8_t z = 0;
        return send_raw(s, id, FLARE__SCTP_PPID_BINARY_EMPTY, &z, 1);
    }
    return send_raw(s, id, FLARE__SCTP_PPID_BINARY, data, len);
}

int flare__sctp_close_channel(flare__sctp *s, uint16_t id)
{
    if (id >= s->max_channels || s->chans[id].state == CH_FREE)
        return FLARE_ERR_NOT_FOUND;
    reset_out(s, id);
    return 0;
}

size_t flare__sctp_num_channels(const flare__sctp *s)
{
    return s->nchan;
}
