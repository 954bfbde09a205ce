#!/usr/bin/env bash
# Browser (Debian's Chromium, headless, js-libp2p 3.3.11 + @libp2p/webrtc
# 6.0.30) against flare and against js-libp2p in Node (the reference), all in
# one network namespace on one machine (tests/browser/webrtc-lib.sh):
#  - webrtc-direct: the browser dials a public node's /webrtc-direct/certhash
#    address (flare listen / webrtc.mjs);
#  - p2p webrtc: the browser reaches a flare relay over ws and dials a private
#    node's /p2p-circuit/webrtc address (flare listen --relay / webrtc-p2p-listener.mjs,
#    both reserving over TCP).
# Per run and target: relayed->webrtc (p2p only: from the relayed
# connection's open to the WebRTC connection's, as the browser sees it) and
# the throughput of one echo of --bytes over a data channel (bytes sent =
# bytes echoed back at the same time; MiB/s = bytes / time to the last byte
# back). Every run starts a fresh browser page (a fresh js node) per target;
# the order of the targets alternates between runs. Prints the medians.
#
#   bench/browser-webrtc-bench.sh [--runs N] [--bytes N] [--json]
# Needs root (namespaces), chromium and the npm registry (or the installed
# build/browser-js and build/interop-js).
runs=5 bytes=$((8 << 20)) json=0
while [ $# -gt 0 ]; do
    case $1 in
        --runs) runs=$2; shift 2 ;;
        --bytes) bytes=$2; shift 2 ;;
        --json) json=1; shift ;;
        *) echo "usage: $0 [--runs N] [--bytes N] [--json]" >&2; exit 2 ;;
    esac
done
# shellcheck source=../tests/browser/webrtc-lib.sh
source "$(dirname "$0")/../tests/browser/webrtc-lib.sh"
[ -n "$jsnode" ] || { echo "the js-libp2p interop peer is needed (scripts/interop-setup.sh)"; exit 1; }

start "$tmp/fd.log" "$flare" listen --listen "/ip4/$ip/udp/0/webrtc-direct" --echo /echo/1.0.0 \
    --no-holepunch --json
start "$tmp/jd.log" "$jsnode" "$jsdir/webrtc.mjs" --listen "/ip4/$ip/udp/0/webrtc-direct" --echo /echo/1.0.0
start "$tmp/relay.log" "$flare" relay --listen "/ip4/$ip/tcp/0" --listen "/ip4/$ip/tcp/0/ws" --json
rtcp=$(listening "$tmp/relay.log" '"/ws" not in a')
rws=$(listening "$tmp/relay.log" '"/ws" in a')
start "$tmp/fp.log" "$flare" listen --listen "/ip4/$ip/tcp/0" --relay "$rtcp" --echo /echo/1.0.0 \
    --no-holepunch --json
start "$tmp/jp.log" "$jsnode" "$jsdir/webrtc-p2p-listener.mjs" --reserve "$rtcp" --echo /echo/1.0.0
fd=$(listening "$tmp/fd.log" '"/webrtc-direct/certhash/" in a')
wait_event "$tmp/jd.log" listening
jd=$(field "$tmp/jd.log" listening '[a for a in e["addrs"] if "/certhash/" in a][0]')
wait_event "$tmp/fp.log" reservation || { echo "flare private node: no reservation"; exit 1; }
fp="$rws/p2p-circuit/webrtc/p2p/$(field "$tmp/fp.log" listening 'e["peerId"]')"
wait_event "$tmp/jp.log" reserved || { echo "js private node: no reservation"; exit 1; }
jp=$(field "$tmp/jp.log" reserved '[a for a in e["addrs"] if "/ws/" in a and "/p2p-circuit/webrtc/" in a][0]')
names=(direct-flare direct-js p2p-flare p2p-js)
targets=("$fd" "$jd" "$fp" "$jp")

for r in $(seq "$runs"); do
    order=(0 1 2 3)
    [ $((r % 2)) -eq 0 ] && order=(1 0 3 2)
    args=()
    for i in "${order[@]}"; do args+=(--addr "${targets[$i]}"); done
    browser_json "$tmp/run$r.out" --sizes 1024 --bench-bytes "$bytes" --timeout 60000 "${args[@]}"
    n=0
    for i in "${order[@]}"; do
        n=$((n + 1))
        grep '"event":"browser"' "$tmp/run$r.out" | sed -n "${n}p" |
            python3 -c 'import json,sys; e=json.loads(sys.stdin.read() or "{}"); e["target"]=sys.argv[1]; e["run"]=int(sys.argv[2]); print(json.dumps(e))' \
                "${names[$i]}" "$r" >>"$tmp/all.jsonl"
    done
done
[ $json -eq 1 ] && cat "$tmp/all.jsonl"
python3 - "$tmp/all.jsonl" "$runs" "$bytes" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
runs, nbytes = int(sys.argv[2]), int(sys.argv[3])
def med(xs):
    return "%.1f" % statistics.median(xs) if xs else "-"
print("runs %d, echo of %.1f MiB per target and run; medians (min..max)" % (runs, nbytes / 1048576))
print("| target | ok | dial ms | relayed->webrtc ms | echo MiB/s |")
print("|---|---|---|---|---|")
for t in ["direct-flare", "direct-js", "p2p-flare", "p2p-js"]:
    rs = [r for r in rows if r.get("target") == t]
    good = [r for r in rs if r.get("ok") and r.get("bench", {}).get("ok")]
    def col(f):
        xs = [f(r) for r in good if f(r) is not None]
        return "%s (%s..%s)" % (med(xs), "%.1f" % min(xs), "%.1f" % max(xs)) if xs else "-"
    print("| %s | %d/%d | %s | %s | %s |" % (t, len(good), len(rs), col(lambda r: r.get("dialMs")),
          col(lambda r: r.get("relayedToWebrtcMs")), col(lambda r: r["bench"]["mibPerS"])))
    for r in rs:
        if r not in good: print("  %s run %s failed: %s" % (t, r.get("run"), r.get("error")))
EOF
