/* Hole-punch tracer: counters, a bounded step log, Prometheus text output. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "flare/dcutr.h"

static const char *const step_names[FLARE_DCUTR_STEP_COUNT] = {
    "relay-up",      "direct-dial", "connect-sent", "connect-received", "rtt",     "sync-sent",
    "sync-received", "dial-start",  "direct-up",    "attempt-failed",   "gave-up",
};

static const char *const reason_names[FLARE_DCUTR_REASON_COUNT] = {
    "none",   "dial",     "dial-timeout", "stream-timeout",
    "stream", "protocol", "no-addrs",     "unsupported",
};

static const char *const transport_names[FLARE_DCUTR_TR_N] = {"tcp", "quic", "other"};
static const char *const ipv_names[FLARE_DCUTR_IPV_N] = {"4", "6", "other"};

const char *flare_dcutr_step_name(flare_dcutr_step s)
{
    return (unsigned)s < FLARE_DCUTR_STEP_COUNT ? step_names[s] : "unknown";
}

const char *flare_dcutr_reason_name(flare_dcutr_reason r)
{
    return (unsigned)r < FLARE_DCUTR_REASON_COUNT ? reason_names[r] : "unknown";
}

void flare_dcutr_tracer_init(flare_dcutr_tracer *t)
{
    memset(t, 0, sizeof(*t));
}

void flare_dcutr_tracer_step(flare_dcutr_tracer *t, uint64_t id, int initiator, unsigned attempt,
                             flare_dcutr_step step, flare_tstamp now, uint64_t value)
{
    if ((unsigned)step >= FLARE_DCUTR_STEP_COUNT)
        return;
    /* Each side starts an exchange at exactly one of these. */
    if ((initiator && step == FLARE_DCUTR_STEP_CONNECT_SENT) ||
        (!initiator && step == FLARE_DCUTR_STEP_CONNECT_RECEIVED))
        t->attempts++;
    if (step == FLARE_DCUTR_STEP_RTT)
        t->last_rtt = value;
    if (step == FLARE_DCUTR_STEP_ATTEMPT_FAILED && value < FLARE_DCUTR_REASON_COUNT)
        t->attempt_failed[value]++;
    if (step == FLARE_DCUTR_STEP_GAVE_UP && value < FLARE_DCUTR_REASON_COUNT)
        t->gave_up[value]++;
    flare_dcutr_trace_entry *e = &t->log[t->logged % FLARE_DCUTR_TRACE_LOG];
    e->id = id;
    e->t = now;
    e->value = value;
    e->step = (uint8_t)step;
    e->attempt = attempt > 255 ? 255 : (uint8_t)attempt;
    e->initiator = initiator ? 1 : 0;
    t->logged++;
}

static void classify(const flare_multiaddr *ma, int *tr, int *ipv)
{
    *tr = FLARE_DCUTR_TR_OTHER;
    *ipv = FLARE_DCUTR_IPV_OTHER;
    if (!ma || ma->len == 0)
        return;
    if (flare_multiaddr_has(ma, FLARE_MA_IP4))
        *ipv = FLARE_DCUTR_IPV4;
    else if (flare_multiaddr_has(ma, FLARE_MA_IP6))
        *ipv = FLARE_DCUTR_IPV6;
    if (flare_multiaddr_has(ma, FLARE_MA_QUIC_V1) || flare_multiaddr_has(ma, FLARE_MA_QUIC))
        *tr = FLARE_DCUTR_TR_QUIC;
    else if (flare_multiaddr_has(ma, FLARE_MA_TCP))
        *tr = FLARE_DCUTR_TR_TCP;
}

void flare_dcutr_tracer_outcome(flare_dcutr_tracer *t, int ok, const flare_multiaddr *addr,
                                unsigned attempt)
{
    int tr, ipv;
    classify(addr, &tr, &ipv);
    t->outcomes[ok ? 1 : 0][tr][ipv]++;
    if (ok && attempt > 0) {
        size_t n = attempt > FLARE_DCUTR_TRACE_ATTEMPTS ? FLARE_DCUTR_TRACE_ATTEMPTS : attempt - 1;
        t->success_attempt[n]++;
    }
}

void flare_dcutr_tracer_direct_dial(flare_dcutr_tracer *t, int ok)
{
    t->direct_dials[ok ? 1 : 0]++;
}

const flare_dcutr_trace_entry *flare_dcutr_tracer_entry(const flare_dcutr_tracer *t, size_t i)
{
    uint64_t kept = t->logged < FLARE_DCUTR_TRACE_LOG ? t->logged : FLARE_DCUTR_TRACE_LOG;
    if (i >= kept)
        return NULL;
    return &t->log[(t->logged - 1 - i) % FLARE_DCUTR_TRACE_LOG];
}

/* ---- Prometheus text format 0.0.4 ---- */

static int emitf(flare_buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int emitf(flare_buf *out, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line))
        return FLARE_ERR_INTERNAL;
    return flare_buf_append(out, line, (size_t)n);
}

static int header(flare_buf *out, const char *name, const char *type, const char *help)
{
    int rv = emitf(out, "# HELP %s %s\n", name, help);
    return rv ? rv : emitf(out, "# TYPE %s %s\n", name, type);
}

static int fmt_outcomes(const flare_dcutr_tracer *t, flare_buf *out)
{
    int rv = header(out, "flare_holepunch_outcomes_total", "counter",
                    "Hole punch dial phases by result, transport and IP version.");
    for (int ok = 1; rv == 0 && ok >= 0; ok--)
        for (int tr = 0; rv == 0 && tr < FLARE_DCUTR_TR_N; tr++)
            for (int v = 0; rv == 0 && v < FLARE_DCUTR_IPV_N; v++) {
                uint64_t c = t->outcomes[ok][tr][v];
                /* Always show the common series so dashboards see zeros. */
                if (c == 0 && (tr == FLARE_DCUTR_TR_OTHER || v == FLARE_DCUTR_IPV_OTHER))
                    continue;
                rv = emitf(out,
                           "flare_holepunch_outcomes_total{result=\"%s\",transport=\"%s\","
                           "ipv=\"%s\"} %" PRIu64 "\n",
                           ok ? "success" : "failure", transport_names[tr], ipv_names[v], c);
            }
    return rv;
}

static int fmt_reasons(flare_buf *out, const char *name, const char *help, const uint64_t *c)
{
    int rv = header(out, name, "counter", help);
    for (int r = 1; rv == 0 && r < FLARE_DCUTR_REASON_COUNT; r++)
        rv = emitf(out, "%s{reason=\"%s\"} %" PRIu64 "\n", name, reason_names[r], c[r]);
    return rv;
}

static int fmt_success_attempt(const flare_dcutr_tracer *t, flare_buf *out)
{
    int rv = header(out, "flare_holepunch_success_attempt", "counter",
                    "Successful hole punches by the attempt that succeeded.");
    for (int n = 0; rv == 0 && n <= FLARE_DCUTR_TRACE_ATTEMPTS; n++) {
        if (n < FLARE_DCUTR_TRACE_ATTEMPTS)
            rv = emitf(out, "flare_holepunch_success_attempt{n=\"%d\"} %" PRIu64 "\n", n + 1,
                       t->success_attempt[n]);
        else
            rv = emitf(out, "flare_holepunch_success_attempt{n=\"more\"} %" PRIu64 "\n",
                       t->success_attempt[n]);
    }
    return rv;
}

int flare_dcutr_metrics_format(const flare_dcutr_tracer *t, flare_buf *out)
{
    size_t start = out->len;
    int rv = header(out, "flare_holepunch_attempts_total", "counter",
                    "Hole punch exchanges started (CONNECT sent or received).");
    if (rv == 0)
        rv = emitf(out, "flare_holepunch_attempts_total %" PRIu64 "\n", t->attempts);
    if (rv == 0)
        rv = fmt_outcomes(t, out);
    if (rv == 0)
        rv = fmt_success_attempt(t, out);
    if (rv == 0)
        rv = fmt_reasons(out, "flare_holepunch_attempt_failures_total",
                         "Failed hole punch attempts by reason.", t->attempt_failed);
    if (rv == 0)
        rv = fmt_reasons(out, "flare_holepunch_gave_up_total",
                         "Hole punches given up after the last attempt, by reason.", t->gave_up);
    if (rv == 0)
        rv = header(out, "flare_holepunch_direct_dials_total", "counter",
                    "Direct dials before hole punching (connection reversal).");
    for (int ok = 1; rv == 0 && ok >= 0; ok--)
        rv = emitf(out, "flare_holepunch_direct_dials_total{result=\"%s\"} %" PRIu64 "\n",
                   ok ? "success" : "failure", t->direct_dials[ok]);
    if (rv == 0)
        rv = header(out, "flare_holepunch_last_rtt_seconds", "gauge",
                    "Relay round-trip time measured by the last exchange.");
    if (rv == 0)
        rv = emitf(out, "flare_holepunch_last_rtt_seconds %" PRIu64 ".%09" PRIu64 "\n",
                   (uint64_t)(t->last_rtt / FLARE_NS_PER_S),
                   (uint64_t)(t->last_rtt % FLARE_NS_PER_S));
    if (rv)
        out->len = start;
    return rv;
}
