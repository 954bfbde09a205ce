/* multistream-select 1.0.0: see include/flare/mss.h. */
#include "flare/mss.h"
#include "flare/lpframe.h"
#include "flare/varint.h"
#include "core/mem.h"

#include <stddef.h>
#include <string.h>

enum {
    ST_INIT,      /* nothing sent yet */
    ST_HEADER,    /* waiting for the remote header */
    ST_NEGOTIATE, /* dialer: waiting for an answer; listener: for a proposal */
    ST_DONE,      /* negotiation over; the rest of the stream is the app's */
    ST_FAILED,
};

static const char NA[] = "na";
static const char LS[] = "ls";

static int valid_proto(const char *p)
{
    size_t n = p ? strlen(p) : 0;
    return n > 0 && n <= FLARE_MSS_MAX_PROTO_LEN && !memchr(p, '\n', n);
}

int flare_mss_init(flare_mss *m, const flare_mss_settings *s, const flare_mem *mem)
{
    /* Not the partial-message buffer: only its first plen bytes are read,
     * and every stream of every connection starts a negotiation. */
    memset(m, 0, offsetof(flare_mss, pend));
    if (!s || (s->role != FLARE_MSS_DIALER && s->role != FLARE_MSS_LISTENER))
        return FLARE_ERR_INVALID_ARG;
    if (s->nprotocols && !s->protocols)
        return FLARE_ERR_INVALID_ARG;
    if (s->role == FLARE_MSS_DIALER && s->nprotocols == 0)
        return FLARE_ERR_INVALID_ARG;
    if (s->role == FLARE_MSS_LISTENER && s->nprotocols == 0 && !s->supports)
        return FLARE_ERR_INVALID_ARG;
    for (size_t i = 0; i < s->nprotocols; i++)
        if (!valid_proto(s->protocols[i]))
            return FLARE_ERR_INVALID_ARG;
    m->s = *s;
    m->mem = flare__mem(mem);
    m->state = ST_INIT;
    return 0;
}

void flare_mss_free(flare_mss *m)
{
    /* Nothing of its own: the selection is an entry of s.protocols or the
     * proposal in pend. */
    m->selected = NULL;
    m->done = 0;
}

/* Appends uvarint(len+1) || line || '\n'. */
static int put_line(flare_buf *out, const char *line, size_t len)
{
    int rv = flare_buf_reserve(out, len + 1 + FLARE_UVARINT_MAX_LEN);
    if (rv)
        return rv;
    if ((rv = flare_buf_append_uvarint(out, len + 1)) || (rv = flare_buf_append(out, line, len)))
        return rv;
    return flare_buf_append_byte(out, '\n');
}

static int put_str(flare_buf *out, const char *s)
{
    return put_line(out, s, strlen(s));
}

static int optimistic(const flare_mss *m)
{
    return m->s.role == FLARE_MSS_DIALER && m->s.optimistic && m->s.nprotocols == 1;
}

int flare_mss_start(flare_mss *m, flare_buf *out)
{
    if (m->state != ST_INIT)
        return FLARE_ERR_STATE;
    int rv = put_str(out, FLARE_MSS_PROTOCOL_ID);
    if (!rv && m->s.role == FLARE_MSS_DIALER)
        rv = put_str(out, m->s.protocols[0]);
    if (!rv && optimistic(m)) {
        m->selected = m->s.protocols[0];
        m->done = 1;
    }
    if (rv) {
        m->state = ST_FAILED;
        return rv;
    }
    m->state = ST_HEADER;
    return 0;
}

static int line_is(const char *line, size_t len, const char *want)
{
    return strlen(want) == len && (len == 0 || memcmp(line, want, len) == 0);
}

/* The "ls" answer: one frame of per-protocol lines and a closing '\n'. */
static int put_ls(const flare_mss *m, flare_buf *out)
{
    size_t total = 1;
    for (size_t i = 0; i < m->s.nprotocols; i++) {
        size_t n = strlen(m->s.protocols[i]) + 1;
        total += flare_uvarint_len(n) + n;
    }
    int rv = flare_buf_reserve(out, total + FLARE_UVARINT_MAX_LEN);
    if (rv || (rv = flare_buf_append_uvarint(out, total)))
        return rv;
    for (size_t i = 0; i < m->s.nprotocols; i++)
        if ((rv = put_str(out, m->s.protocols[i])))
            return rv;
    return flare_buf_append_byte(out, '\n');
}

/* line is NUL-terminated in place (its '\n' was overwritten). */
static int listener_supports(const flare_mss *m, const char *line, size_t len)
{
    if (len == 0 || memchr(line, '\0', len) || memchr(line, '\n', len))
        return 0;
    for (size_t i = 0; i < m->s.nprotocols; i++)
        if (line_is(line, len, m->s.protocols[i]))
            return 1;
    return m->s.supports && m->s.supports(line, len, m->s.user) == 1;
}

static int on_proposal(flare_mss *m, const char *line, size_t len, flare_buf *out)
{
    /* Every "ls" and "na" is output the peer made us produce: a peer that
     * floods proposals without reading must not grow our write queue. */
    if (++m->replies > FLARE_MSS_MAX_REPLIES)
        return FLARE_ERR_LIMIT;
    if (line_is(line, len, LS))
        return put_ls(m, out);
    if (!listener_supports(m, line, len))
        return put_str(out, NA);
    int rv = put_line(out, line, len);
    if (rv)
        return rv;
    m->selected = NULL;
    m->sel_off = (uint32_t)((const uint8_t *)line - m->pend);
    m->done = m->confirmed = 1;
    m->state = ST_DONE;
    return 0;
}

static int on_answer(flare_mss *m, const char *line, size_t len, flare_buf *out)
{
    const char *p = m->s.protocols[m->next];
    if (line_is(line, len, p)) {
        m->selected = p;
        m->done = m->confirmed = 1;
        m->state = ST_DONE;
        return 0;
    }
    if (!line_is(line, len, NA))
        return FLARE_ERR_PROTO;
    /* An optimistic dialer has already committed its data to this one. */
    if (optimistic(m) || ++m->next == m->s.nprotocols)
        return FLARE_ERR_NEGOTIATION;
    return put_str(out, m->s.protocols[m->next]);
}

static int on_message(flare_mss *m, char *msg, size_t len, flare_buf *out)
{
    if (len == 0 || msg[len - 1] != '\n')
        return FLARE_ERR_MALFORMED;
    len--;
    msg[len] = '\0'; /* lets the matcher and selected() take a C string */
    if (m->state == ST_HEADER) {
        if (!line_is(msg, len, FLARE_MSS_PROTOCOL_ID))
            return FLARE_ERR_PROTO;
        m->state = ST_NEGOTIATE;
        return 0;
    }
    if (m->s.role == FLARE_MSS_LISTENER)
        return on_proposal(m, msg, len, out);
    return on_answer(m, msg, len, out);
}

/* Bytes still missing from the partial frame in pend: one at a time while
 * inside the varint, so that no byte past the frame is ever taken. */
static size_t frame_missing(const flare_mss *m)
{
    uint64_t n;
    int h = flare_uvarint_decode(m->pend, m->plen, &n);
    if (h < 0)
        return 1;
    return (size_t)h + (size_t)n - m->plen;
}

/* Moves bytes of in into pend until it holds one whole frame. Returns 0 with
 * the frame's body in *msg and *mlen, FLARE_ERR_AGAIN once in is used up, or a
 * framing error. */
static int take_frame(flare_mss *m, const uint8_t *in, size_t len, size_t *used, uint8_t **msg,
                      size_t *mlen)
{
    for (;;) {
        const uint8_t *body;
        int rv = flare_lpframe_parse(m->pend, m->plen, FLARE_MSS_MAX_MSG, &body, mlen);
        if (rv >= 0) {
            *msg = m->pend + (body - m->pend);
            m->plen = 0;
            return 0;
        }
        if (rv != FLARE_ERR_AGAIN || *used == len)
            return rv;
        size_t take = frame_missing(m);
        if (take > len - *used)
            take = len - *used;
        memcpy(m->pend + m->plen, in + *used, take);
        m->plen += take;
        *used += take;
    }
}

int flare_mss_recv(flare_mss *m, const uint8_t *in, size_t len, size_t *consumed, flare_buf *out)
{
    size_t used = 0;
    int rv = 0;
    *consumed = 0;
    if (m->state == ST_FAILED)
        return FLARE_ERR_STATE;
    if (m->state == ST_INIT && (rv = flare_mss_start(m, out)))
        return rv;
    while (m->state != ST_DONE) {
        uint8_t *msg;
        size_t mlen;
        rv = take_frame(m, in, len, &used, &msg, &mlen);
        if (rv == FLARE_ERR_AGAIN)
            break;
        if (rv || (rv = on_message(m, (char *)msg, mlen, out))) {
            m->state = ST_FAILED;
            *consumed = used;
            return rv;
        }
    }
    *consumed = used;
    return m->state == ST_DONE;
}

int flare_mss_done(const flare_mss *m)
{
    return m->done;
}

int flare_mss_confirmed(const flare_mss *m)
{
    return m->confirmed;
}

const char *flare_mss_selected(const flare_mss *m)
{
    if (!m->done)
        return NULL;
    return m->selected ? m->selected : (const char *)m->pend + m->sel_off;
}
