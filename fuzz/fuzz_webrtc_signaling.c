/* Fuzz the /webrtc-signaling/0.0.1 handler of a flare host (the WebRTC
 * private-to-private listener, src/transport/webrtc_p2p.c) on the
 * simulator: a peer P connected to H over TCP opens the signalling stream
 * and writes the input's chunks into it, with simulated time between them;
 * then the time runs past H's handshake timeout, so every link H made
 * (socket, ICE agent, DTLS, the inbound connection) is set up and torn
 * down. No crash, no leak (the sanitizers' job); H's inbound WebRTC
 * connection never outlives the timeout without a real peer.
 *
 * Input: chunks [len_hi][len_lo][len bytes] (at most 16), each written to
 * the stream and followed by 50 ms. An input that starts with the byte
 * 0xff half-closes the stream after the chunks. */
#include <stdlib.h>
#include <string.h>

#include "flare/sim.h"
#include "support/helpers.h"
#include "transport/webrtc/signal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_close(flare_stream *s, int err, void *user)
{
    *(flare_stream **)user = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    flare_sim *sim = flare_sim_new(1, NULL);
    flare_sim_host *hs, *ps;
    flare_host *h, *p;
    flare_test_host_spec sh = {.name = "H",
                               .lan = flare_sim_internet(sim),
                               .ip = "198.51.100.1",
                               .seed = {1},
                               .listen_port = 4001};
    flare_test_host_spec sp = {
        .name = "P", .lan = flare_sim_internet(sim), .ip = "198.51.100.2", .seed = {2}};
    if (flare_test_host_make(sim, &sh, &hs, &h) || flare_test_host_make(sim, &sp, &ps, &p))
        abort();
    flare_multiaddr ma;
    if (flare_test_tcp_addr(&ma, "198.51.100.1", 4001, flare_host_peerid(h)))
        abort();
    flare_test_dial d = {0};
    if (flare_host_dial(p, &ma, NULL, flare_test_dial_cb, &d))
        abort();
    flare_sim_run_for(sim, 500 * FLARE_NS_PER_MS);
    if (d.status != 0 || !d.conn)
        abort();
    flare_stream *s = NULL;
    flare_stream_cbs cbs = {.on_close = on_close};
    if (flare_conn_new_stream(d.conn, FLARE__SIGNAL_PROTOCOL_ID, &cbs, &s, 0, &s))
        abort();
    int half_close = size > 0 && data[0] == 0xff;
    size_t off = half_close ? 1 : 0;
    for (int n = 0; n < 16 && off + 2 <= size; n++) {
        size_t len = (size_t)data[off] << 8 | data[off + 1];
        off += 2;
        if (len > size - off)
            len = size - off;
        if (s && len)
            (void)flare_stream_write(s, data + off, len);
        off += len;
        flare_sim_run_for(sim, 50 * FLARE_NS_PER_MS);
    }
    if (half_close && s)
        (void)flare_stream_close_write(s);
    flare_sim_run_for(sim, 20 * FLARE_NS_PER_S);
    /* Only the TCP connection may be left. */
    if (flare_host_num_conns(h) > 1)
        abort();
    flare_host_del(p);
    flare_host_del(h);
    flare_sim_del(sim);
    return 0;
}
