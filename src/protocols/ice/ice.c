/*
 * The ICE agent (flare/ice.h): candidates, the checklist, connectivity
 * checks and their answers, nomination, role conflicts and consent
 * freshness. Fixed-size tables: a peer cannot make it grow.
 */
#include <string.h>

#include "core/mem.h"
#include "flare/ice.h"
#include "flare/multiaddr.h"
#include "flare/stun.h"

#define MAX_PAIRS (FLARE_ICE_MAX_LOCAL * FLARE_ICE_MAX_REMOTE)
#define MAX_RESP  8
#define RESP_LEN  192

typedef enum { P_WAITING, P_INPROGRESS, P_SUCCEEDED, P_FAILED } pstate;

typedef struct pair {
    uint8_t l, r; /* local (a base) and remote candidate indices */
    pstate st;
    uint8_t txid[FLARE_STUN_TXID_LEN];
    unsigned sends;
    flare_tstamp next, rto;
    int use_cand;  /* the check in progress nominates */
    int nominated; /* controlled: the peer nominated it */
    int triggered;
    int valid;
} pair;

typedef struct resp {
    uint8_t buf[RESP_LEN];
    size_t len;
    flare_ipaddr from, to;
} resp;

struct flare_ice_agent {
    flare_ice_settings cfg;
    const flare_mem *mem;
    flare_rng rng;
    char lufrag[FLARE_ICE_MAX_CRED + 1], lpwd[FLARE_ICE_MAX_CRED + 1];
    char rufrag[FLARE_ICE_MAX_CRED + 1], rpwd[FLARE_ICE_MAX_CRED + 1];
    int have_rcred, controlling, started;
    uint64_t tiebreaker;
    flare_ice_state state;
    flare_ice_candidate local[FLARE_ICE_MAX_LOCAL], remote[FLARE_ICE_MAX_REMOTE];
    size_t nlocal, nremote, npairs;
    pair pairs[MAX_PAIRS];
    flare_tstamp next_check, first_valid;
    int selected, nominating; /* pair indices, -1: none */
    resp resps[MAX_RESP];
    size_t nresp;
    flare_tstamp last_consent, next_consent;
    uint8_t consent_txid[FLARE_STUN_TXID_LEN];
};

void flare_ice_settings_default(flare_ice_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->struct_size = sizeof(*s);
    s->ta = 50 * FLARE_NS_PER_MS;
    s->rto = 250 * FLARE_NS_PER_MS;
    s->max_sends = 6;
    s->nominate_wait = FLARE_NS_PER_S;
    s->consent_interval = 5 * FLARE_NS_PER_S;
    s->consent_timeout = 30 * FLARE_NS_PER_S;
    s->max_remote = 16;
}

static int cred_ok(const char *s, size_t min)
{
    size_t n = s ? strlen(s) : 0;
    if (n < min || n > FLARE_ICE_MAX_CRED)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == ':' || (unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

static void rand_bytes(flare_ice_agent *a, void *dst, size_t n)
{
    a->rng.fn(dst, n, a->rng.user);
}

int flare_ice_agent_new(flare_ice_agent **out, const flare_ice_settings *cfg, const char *ufrag,
                        const char *pwd, flare_rng rng, const flare_mem *mem)
{
    flare_ice_settings def;
    if (!cfg) {
        flare_ice_settings_default(&def);
        cfg = &def;
    }
    if (!out || !rng.fn || cfg->struct_size != sizeof(*cfg) || !cred_ok(ufrag, 4) ||
        !cred_ok(pwd, 22) || cfg->max_sends == 0 || cfg->max_sends > 16 || cfg->rto == 0 ||
        cfg->ta == 0 || cfg->max_remote == 0 || cfg->max_remote > FLARE_ICE_MAX_REMOTE ||
        cfg->consent_interval == 0 || cfg->consent_timeout == 0)
        return FLARE_ERR_INVALID_ARG;
    if (!mem)
        mem = flare_mem_default();
    flare_ice_agent *a = flare__calloc(mem, 1, sizeof(*a));
    if (!a)
        return FLARE_ERR_NOMEM;
    a->cfg = *cfg;
    a->mem = mem;
    a->rng = rng;
    strcpy(a->lufrag, ufrag);
    strcpy(a->lpwd, pwd);
    a->controlling = cfg->lite ? 0 : cfg->controlling != 0;
    rand_bytes(a, &a->tiebreaker, sizeof(a->tiebreaker));
    a->selected = a->nominating = -1;
    *out = a;
    return 0;
}

void flare_ice_agent_del(flare_ice_agent *a)
{
    if (a)
        flare__free(a->mem, a);
}

int flare_ice_set_remote_credentials(flare_ice_agent *a, const char *ufrag, const char *pwd)
{
    if (!a || !cred_ok(ufrag, 4) || !cred_ok(pwd, 22))
        return FLARE_ERR_INVALID_ARG;
    strcpy(a->rufrag, ufrag);
    strcpy(a->rpwd, pwd);
    a->have_rcred = 1;
    return 0;
}

/* RFC 8445 section 5.1.2.1, one component. */
static uint32_t cand_priority(flare_ice_cand_type t, size_t index)
{
    static const uint32_t type_pref[] = {126, 100, 110, 0};
    return type_pref[t] << 24 | (uint32_t)(65535 - index) << 8 | 255;
}

static uint64_t pair_prio(const flare_ice_agent *a, const pair *p)
{
    uint64_t l = a->local[p->l].priority, r = a->remote[p->r].priority;
    uint64_t g = a->controlling ? l : r, d = a->controlling ? r : l;
    return (g < d ? g : d) << 32 | (g > d ? g : d) << 1 | (g > d ? 1 : 0);
}

/* The first local candidate with base (the one its pairs use), or -1. */
static int local_base(const flare_ice_agent *a, const flare_ipaddr *base)
{
    for (size_t i = 0; i < a->nlocal; i++)
        if (flare_ipaddr_equal(&a->local[i].base, base))
            return (int)i;
    return -1;
}

static int find_remote(const flare_ice_agent *a, const flare_ipaddr *addr)
{
    for (size_t i = 0; i < a->nremote; i++)
        if (flare_ipaddr_equal(&a->remote[i].addr, addr))
            return (int)i;
    return -1;
}

static int find_pair(const flare_ice_agent *a, int l, int r)
{
    for (size_t i = 0; i < a->npairs; i++)
        if (a->pairs[i].l == l && a->pairs[i].r == r)
            return (int)i;
    return -1;
}

static int add_pair(flare_ice_agent *a, int l, int r)
{
    int i = find_pair(a, l, r);
    if (i >= 0)
        return i;
    if (a->npairs >= MAX_PAIRS || a->local[l].base.family != a->remote[r].addr.family)
        return -1;
    pair *p = &a->pairs[a->npairs];
    memset(p, 0, sizeof(*p));
    p->l = (uint8_t)l;
    p->r = (uint8_t)r;
    p->st = P_WAITING;
    if (a->state == FLARE_ICE_FAILED && a->selected < 0)
        a->state = a->started ? FLARE_ICE_CHECKING : FLARE_ICE_NEW;
    return (int)a->npairs++;
}

static int addr_ok(const flare_ipaddr *ip)
{
    return (ip->family == 4 || ip->family == 6) && ip->port != 0;
}

int flare_ice_add_local(flare_ice_agent *a, flare_ice_cand_type type, const flare_ipaddr *addr,
                        const flare_ipaddr *base)
{
    if (!a || !addr || !base || (unsigned)type > FLARE_ICE_RELAY || !addr_ok(addr) ||
        !addr_ok(base) || addr->family != base->family)
        return FLARE_ERR_INVALID_ARG;
    for (size_t i = 0; i < a->nlocal; i++)
        if (flare_ipaddr_equal(&a->local[i].addr, addr) &&
            flare_ipaddr_equal(&a->local[i].base, base))
            return FLARE_ERR_EXISTS;
    if (a->nlocal >= FLARE_ICE_MAX_LOCAL)
        return FLARE_ERR_LIMIT;
    int reuse = local_base(a, base) >= 0;
    flare_ice_candidate *c = &a->local[a->nlocal];
    c->type = type;
    c->addr = *addr;
    c->base = *base;
    c->priority = cand_priority(type, a->nlocal);
    a->nlocal++;
    if (!reuse) /* a server-reflexive candidate checks from its base's pairs */
        for (size_t r = 0; r < a->nremote; r++)
            add_pair(a, (int)a->nlocal - 1, (int)r);
    return 0;
}

size_t flare_ice_local_candidates(const flare_ice_agent *a, flare_ice_candidate *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < a->nlocal && n < cap; i++)
        out[n++] = a->local[i];
    return n;
}

static int scope_ok(const flare_ice_agent *a, const flare_ipaddr *ip)
{
    flare_ma_class c = flare_ipaddr_classify(ip);
    if (c == FLARE_MA_UNSPECIFIED || c == FLARE_MA_OTHER)
        return 0;
    return a->cfg.allow_private || flare_ma_class_is_public(c, a->cfg.doc_is_public);
}

static int remote_new(flare_ice_agent *a, flare_ice_cand_type type, const flare_ipaddr *addr,
                      uint32_t prio)
{
    if (a->nremote >= a->cfg.max_remote)
        return FLARE_ERR_LIMIT;
    flare_ice_candidate *c = &a->remote[a->nremote];
    memset(c, 0, sizeof(*c));
    c->type = type;
    c->addr = *addr;
    c->priority = prio ? prio : cand_priority(type, 0);
    a->nremote++;
    for (size_t l = 0; l < a->nlocal; l++)
        if (local_base(a, &a->local[l].base) == (int)l)
            add_pair(a, (int)l, (int)a->nremote - 1);
    return 0;
}

int flare_ice_add_remote(flare_ice_agent *a, const flare_ice_candidate *c)
{
    if (!a || !c || (unsigned)c->type > FLARE_ICE_RELAY)
        return FLARE_ERR_INVALID_ARG;
    if (!addr_ok(&c->addr) || !scope_ok(a, &c->addr))
        return FLARE_ERR_REFUSED;
    if (find_remote(a, &c->addr) >= 0)
        return FLARE_ERR_EXISTS;
    return remote_new(a, c->type, &c->addr, c->priority);
}

int flare_ice_start(flare_ice_agent *a, flare_tstamp now)
{
    if (!a->have_rcred && !a->cfg.lite)
        return FLARE_ERR_STATE;
    a->started = 1;
    a->state = FLARE_ICE_CHECKING;
    a->next_check = now;
    return 0;
}

flare_ice_state flare_ice_get_state(const flare_ice_agent *a)
{
    return a->state;
}

int flare_ice_is_controlling(const flare_ice_agent *a)
{
    return a->controlling;
}

int flare_ice_selected(const flare_ice_agent *a, flare_ipaddr *local, flare_ipaddr *remote)
{
    if (a->selected < 0)
        return FLARE_ERR_NOT_FOUND;
    const pair *p = &a->pairs[a->selected];
    if (local)
        *local = a->local[p->l].base;
    if (remote)
        *remote = a->remote[p->r].addr;
    return 0;
}

static void select_pair(flare_ice_agent *a, int i, flare_tstamp now)
{
    if (a->selected >= 0)
        return;
    a->selected = i;
    a->state = FLARE_ICE_CONNECTED;
    a->last_consent = now;
    a->next_consent = now + a->cfg.consent_interval;
}

/* ---- incoming ------------------------------------------------------------------------- */

static void queue_resp(flare_ice_agent *a, const uint8_t *buf, int len, const flare_ipaddr *from,
                       const flare_ipaddr *to)
{
    if (len <= 0 || a->nresp >= MAX_RESP)
        return; /* a flood of checks: answers beyond the queue are dropped */
    resp *r = &a->resps[a->nresp++];
    memcpy(r->buf, buf, (size_t)len);
    r->len = (size_t)len;
    r->from = *from;
    r->to = *to;
}

/* RFC 8445 section 7.3.1.1. Returns 1 if the request must get a 487. */
static int role_conflict(flare_ice_agent *a, const flare_stun_msg *m)
{
    uint64_t tb;
    if (a->controlling && flare_stun_get_u64(m, FLARE_STUN_ATTR_ICE_CONTROLLING, &tb) == 0) {
        if (a->tiebreaker >= tb)
            return 1;
        a->controlling = 0;
    } else if (!a->controlling && !a->cfg.lite &&
               flare_stun_get_u64(m, FLARE_STUN_ATTR_ICE_CONTROLLED, &tb) == 0) {
        if (a->tiebreaker >= tb)
            a->controlling = 1;
        else
            return 1;
    }
    return 0;
}

static void on_request(flare_ice_agent *a, const flare_stun_msg *m, const flare_ipaddr *local,
                       const flare_ipaddr *from, flare_tstamp now)
{
    const flare_stun_attr *u = flare_stun_find(m, FLARE_STUN_ATTR_USERNAME);
    size_t ul = strlen(a->lufrag);
    if (!u || u->len <= ul || memcmp(m->raw + u->off, a->lufrag, ul) != 0 ||
        m->raw[u->off + ul] != ':')
        return;
    if (flare_stun_check_integrity(m, (const uint8_t *)a->lpwd, strlen(a->lpwd)) != 0)
        return;
    int l = local_base(a, local);
    if (l < 0)
        return;
    uint8_t buf[RESP_LEN];
    flare_stun_builder b;
    int conflict = role_conflict(a, m);
    if (conflict) {
        flare_stun_build_init(&b, buf, sizeof(buf), FLARE_STUN_BINDING, FLARE_STUN_ERROR, m->txid);
        flare_stun_add_error(&b, FLARE_STUN_ERR_ROLE_CONFLICT, "Role Conflict");
    } else {
        flare_stun_build_init(&b, buf, sizeof(buf), FLARE_STUN_BINDING, FLARE_STUN_SUCCESS,
                              m->txid);
        flare_stun_add_addr(&b, FLARE_STUN_ATTR_XOR_MAPPED_ADDRESS, from);
    }
    flare_stun_add_integrity(&b, (const uint8_t *)a->lpwd, strlen(a->lpwd));
    flare_stun_add_fingerprint(&b);
    queue_resp(a, buf, flare_stun_build_finish(&b), local, from);
    if (conflict)
        return;
    int r = find_remote(a, from);
    uint32_t prio = 0;
    flare_stun_get_u32(m, FLARE_STUN_ATTR_PRIORITY, &prio);
    if (r < 0 && remote_new(a, FLARE_ICE_PRFLX, from, prio) == 0)
        r = (int)a->nremote - 1;
    int i = r < 0 ? -1 : add_pair(a, l, r);
    if (i < 0)
        return;
    pair *p = &a->pairs[i];
    int use = flare_stun_find(m, FLARE_STUN_ATTR_USE_CANDIDATE) != NULL;
    if (a->cfg.lite) {
        if (use)
            select_pair(a, i, now);
        if (a->selected == i)
            a->last_consent = now;
        return;
    }
    if (p->st == P_WAITING || p->st == P_FAILED) {
        p->st = P_WAITING;
        p->triggered = 1;
    }
    if (use && !a->controlling) {
        p->nominated = 1;
        if (p->valid)
            select_pair(a, i, now);
    }
}

static int pair_of_txid(const flare_ice_agent *a, const uint8_t *txid)
{
    for (size_t i = 0; i < a->npairs; i++)
        if (a->pairs[i].st == P_INPROGRESS &&
            memcmp(a->pairs[i].txid, txid, FLARE_STUN_TXID_LEN) == 0)
            return (int)i;
    return -1;
}

static void on_response(flare_ice_agent *a, const flare_stun_msg *m, const flare_ipaddr *local,
                        const flare_ipaddr *from, flare_tstamp now)
{
    if (!a->have_rcred ||
        flare_stun_check_integrity(m, (const uint8_t *)a->rpwd, strlen(a->rpwd)) != 0)
        return;
    if (a->selected >= 0 && memcmp(m->txid, a->consent_txid, FLARE_STUN_TXID_LEN) == 0) {
        if (m->cls == FLARE_STUN_SUCCESS)
            a->last_consent = now;
        return;
    }
    int i = pair_of_txid(a, m->txid);
    if (i < 0)
        return;
    pair *p = &a->pairs[i];
    if (m->cls == FLARE_STUN_ERROR) {
        int code = 0;
        flare_stun_get_error(m, &code, NULL, NULL);
        if (code == FLARE_STUN_ERR_ROLE_CONFLICT) {
            a->controlling = !a->controlling;
            p->st = P_WAITING;
            p->triggered = 1;
            p->use_cand = 0;
        } else {
            p->st = P_FAILED;
        }
        if (a->nominating == i)
            a->nominating = -1;
        return;
    }
    /* Symmetric addresses only (RFC 8445 section 7.2.5.2.1). */
    if (!flare_ipaddr_equal(from, &a->remote[p->r].addr) ||
        !flare_ipaddr_equal(local, &a->local[p->l].base)) {
        p->st = P_FAILED;
        return;
    }
    p->st = P_SUCCEEDED;
    if (!p->valid && a->first_valid == 0)
        a->first_valid = now ? now : 1;
    p->valid = 1;
    if (p->use_cand || (!a->controlling && p->nominated))
        select_pair(a, i, now);
    if (a->nominating == i)
        a->nominating = -1;
}

int flare_ice_input(flare_ice_agent *a, const flare_ipaddr *local, const flare_ipaddr *from,
                    const uint8_t *data, size_t len, flare_tstamp now)
{
    if (!flare_stun_is_stun(data, len))
        return 0;
    flare_stun_msg m;
    if (flare_stun_parse(&m, data, len) != 0 || m.method != FLARE_STUN_BINDING)
        return 1;
    if (m.cls == FLARE_STUN_REQUEST)
        on_request(a, &m, local, from, now);
    else if (m.cls == FLARE_STUN_SUCCESS || m.cls == FLARE_STUN_ERROR)
        on_response(a, &m, local, from, now);
    return 1;
}

/* ---- outgoing ------------------------------------------------------------------------- */

static int build_check(flare_ice_agent *a, const pair *p, const uint8_t *txid, int use_cand,
                       uint8_t *out, size_t cap)
{
    char user[2 * FLARE_ICE_MAX_CRED + 2];
    size_t rl = strlen(a->rufrag), ll = strlen(a->lufrag);
    memcpy(user, a->rufrag, rl);
    user[rl] = ':';
    memcpy(user + rl + 1, a->lufrag, ll);
    flare_stun_builder b;
    flare_stun_build_init(&b, out, cap, FLARE_STUN_BINDING, FLARE_STUN_REQUEST, txid);
    flare_stun_add_attr(&b, FLARE_STUN_ATTR_USERNAME, user, rl + 1 + ll);
    flare_stun_add_u32(&b, FLARE_STUN_ATTR_PRIORITY, cand_priority(FLARE_ICE_PRFLX, p->l));
    flare_stun_add_u64(
        &b, a->controlling ? FLARE_STUN_ATTR_ICE_CONTROLLING : FLARE_STUN_ATTR_ICE_CONTROLLED,
        a->tiebreaker);
    if (use_cand)
        flare_stun_add_attr(&b, FLARE_STUN_ATTR_USE_CANDIDATE, NULL, 0);
    flare_stun_add_integrity(&b, (const uint8_t *)a->rpwd, strlen(a->rpwd));
    flare_stun_add_fingerprint(&b);
    return flare_stun_build_finish(&b);
}

static void start_check(flare_ice_agent *a, pair *p, int use_cand, flare_tstamp now)
{
    rand_bytes(a, p->txid, sizeof(p->txid));
    p->st = P_INPROGRESS;
    p->sends = 0;
    p->rto = a->cfg.rto;
    p->next = now;
    p->use_cand = use_cand;
    p->triggered = 0;
}

/* The pair to check next: a triggered one, else the best waiting one. */
static int next_waiting(const flare_ice_agent *a)
{
    int best = -1;
    for (size_t i = 0; i < a->npairs; i++) {
        const pair *p = &a->pairs[i];
        if (p->st != P_WAITING)
            continue;
        if (best < 0 || (p->triggered && !a->pairs[best].triggered) ||
            (p->triggered == a->pairs[best].triggered &&
             pair_prio(a, p) > pair_prio(a, &a->pairs[best])))
            best = (int)i;
    }
    return best;
}

/* Controlling: the valid pair to nominate now, or -1. */
static int to_nominate(const flare_ice_agent *a, flare_tstamp now)
{
    if (!a->controlling || a->cfg.lite || a->selected >= 0 || a->nominating >= 0)
        return -1;
    int best = -1;
    for (size_t i = 0; i < a->npairs; i++)
        if (a->pairs[i].valid && a->pairs[i].st == P_SUCCEEDED &&
            (best < 0 || pair_prio(a, &a->pairs[i]) > pair_prio(a, &a->pairs[best])))
            best = (int)i;
    if (best < 0)
        return -1;
    if (now >= a->first_valid + a->cfg.nominate_wait)
        return best;
    for (size_t i = 0; i < a->npairs; i++) {
        const pair *p = &a->pairs[i];
        if ((p->st == P_WAITING || p->st == P_INPROGRESS) &&
            pair_prio(a, p) > pair_prio(a, &a->pairs[best]))
            return -1; /* a better pair may still work */
    }
    return best;
}

/* Every pair failed: nothing left to try until a new candidate comes. */
static void update_failed(flare_ice_agent *a)
{
    if (a->selected >= 0 || !a->started || a->cfg.lite || a->npairs == 0)
        return;
    for (size_t i = 0; i < a->npairs; i++)
        if (a->pairs[i].st != P_FAILED)
            return;
    a->state = FLARE_ICE_FAILED;
}

static int emit(flare_ice_agent *a, const pair *p, int n, flare_ipaddr *from, flare_ipaddr *to)
{
    *from = a->local[p->l].base;
    *to = a->remote[p->r].addr;
    return n;
}

/* Consent freshness on the selected pair (RFC 7675). */
static int poll_consent(flare_ice_agent *a, flare_tstamp now, uint8_t *out, size_t cap,
                        flare_ipaddr *from, flare_ipaddr *to)
{
    if (now >= a->last_consent + a->cfg.consent_timeout) {
        a->selected = -1;
        a->state = FLARE_ICE_FAILED;
        return 0;
    }
    if (a->cfg.lite || now < a->next_consent)
        return 0;
    uint16_t r;
    rand_bytes(a, &r, sizeof(r));
    flare_tstamp iv = a->cfg.consent_interval;
    a->next_consent = now + iv * 4 / 5 + iv * 2 / 5 * r / 65535;
    rand_bytes(a, a->consent_txid, sizeof(a->consent_txid));
    const pair *p = &a->pairs[a->selected];
    return emit(a, p, build_check(a, p, a->consent_txid, 0, out, cap), from, to);
}

int flare_ice_poll_send(flare_ice_agent *a, flare_tstamp now, uint8_t *out, size_t cap,
                        flare_ipaddr *from, flare_ipaddr *to)
{
    if (cap < 256)
        return FLARE_ERR_BUFFER_TOO_SMALL;
    if (a->nresp) {
        resp *r = &a->resps[0];
        size_t n = r->len;
        memcpy(out, r->buf, n);
        *from = r->from;
        *to = r->to;
        memmove(&a->resps[0], &a->resps[1], --a->nresp * sizeof(a->resps[0]));
        return (int)n;
    }
    if (a->selected >= 0)
        return poll_consent(a, now, out, cap, from, to);
    if (!a->started || a->cfg.lite || a->state == FLARE_ICE_FAILED)
        return 0;
    for (size_t i = 0; i < a->npairs; i++) { /* retransmissions and timeouts */
        pair *p = &a->pairs[i];
        if (p->st != P_INPROGRESS || now < p->next)
            continue;
        if (p->sends >= a->cfg.max_sends) {
            p->st = P_FAILED;
            if (a->nominating == (int)i)
                a->nominating = -1;
            continue;
        }
        p->sends++;
        p->next = now + p->rto;
        p->rto *= 2;
        return emit(a, p, build_check(a, p, p->txid, p->use_cand, out, cap), from, to);
    }
    int nom = to_nominate(a, now);
    if (nom >= 0) {
        a->nominating = nom;
        start_check(a, &a->pairs[nom], 1, now);
        return flare_ice_poll_send(a, now, out, cap, from, to);
    }
    if (now >= a->next_check) {
        int w = next_waiting(a);
        if (w >= 0) {
            a->next_check = now + a->cfg.ta;
            start_check(a, &a->pairs[w], 0, now);
            return flare_ice_poll_send(a, now, out, cap, from, to);
        }
    }
    update_failed(a);
    return 0;
}

flare_tstamp flare_ice_expiry(const flare_ice_agent *a)
{
    if (a->nresp)
        return 0;
    if (a->selected >= 0) {
        flare_tstamp dead = a->last_consent + a->cfg.consent_timeout;
        return a->cfg.lite || dead < a->next_consent ? dead : a->next_consent;
    }
    if (!a->started || a->cfg.lite || a->state == FLARE_ICE_FAILED)
        return FLARE_TSTAMP_NEVER;
    flare_tstamp t = FLARE_TSTAMP_NEVER;
    for (size_t i = 0; i < a->npairs; i++) {
        const pair *p = &a->pairs[i];
        if (p->st == P_INPROGRESS && p->next < t)
            t = p->next;
        if (p->st == P_WAITING && a->next_check < t)
            t = a->next_check;
    }
    if (a->controlling && a->first_valid && a->nominating < 0 &&
        a->first_valid + a->cfg.nominate_wait < t)
        t = a->first_valid + a->cfg.nominate_wait;
    return t;
}

int flare_ice_direct_ufrag(const uint8_t *data, size_t len, char *out, size_t cap)
{
    flare_stun_msg m;
    if (flare_stun_parse(&m, data, len) != 0 || m.cls != FLARE_STUN_REQUEST ||
        m.method != FLARE_STUN_BINDING)
        return 0;
    const flare_stun_attr *u = flare_stun_find(&m, FLARE_STUN_ATTR_USERNAME);
    size_t pl = strlen(FLARE_ICE_DIRECT_PREFIX);
    if (!u || u->len <= pl || memcmp(data + u->off, FLARE_ICE_DIRECT_PREFIX, pl) != 0)
        return 0;
    const uint8_t *c = memchr(data + u->off, ':', u->len);
    size_t n = c ? (size_t)(c - (data + u->off)) : 0;
    if (n <= pl || n > FLARE_ICE_MAX_CRED)
        return 0;
    if (n + 1 > cap)
        return FLARE_ERR_BUFFER_TOO_SMALL;
    memcpy(out, data + u->off, n);
    out[n] = 0;
    return (int)n;
}
