/*
 * flare/flare.h - the whole public API of libflare in one include.
 *
 *   #include <flare/flare.h>
 *
 * An application embedding a host usually needs only flare/host.h and the
 * libuv driver flare/uvio.h; this header adds the protocol cores and
 * encodings (multiaddr, peer IDs, keys, ...) that the host API uses and
 * that are public in their own right. The simulated network (flare/sim.h)
 * lives in the separate library libflare-sim and is not included here.
 * See docs/guide.md for the set-up order, ownership and linking.
 */
#ifndef FLARE_FLARE_H
#define FLARE_FLARE_H

/* Conventions, version. */
#include "flare/common.h"
#include "flare/version.h"

/* Encodings and identities. */
#include "flare/buf.h"
#include "flare/envelope.h"
#include "flare/ipaddr.h"
#include "flare/keys.h"
#include "flare/lpframe.h"
#include "flare/multiaddr.h"
#include "flare/multibase.h"
#include "flare/multihash.h"
#include "flare/peer_record.h"
#include "flare/peerid.h"
#include "flare/sig_cache.h"
#include "flare/varint.h"

/* Sans-I/O protocol cores. */
#include "flare/autonat.h"
#include "flare/dcutr.h"
#include "flare/identify.h"
#include "flare/mss.h"
#include "flare/noise.h"
#include "flare/tls.h"
#include "flare/ping.h"
#include "flare/relay.h"
#include "flare/yamux.h"

/* The host and its I/O drivers. */
#include "flare/addrmgr.h"
#include "flare/host.h"
#include "flare/io.h"
#include "flare/reachability.h"
#include "flare/relay_server.h"
#include "flare/uvio.h"

#endif
