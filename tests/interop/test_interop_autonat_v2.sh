#!/usr/bin/env bash
# Interop: AutoNAT v2 (/libp2p/autonat/2/dial-request, .../dial-back) between
# flare and js-libp2p (@libp2p/autonat-v2). The js peer runs with
# --autonat-v2, which prints every v2 message its service sends or receives
# ("autonat-v2" lines: dialRequest, dialDataRequest, dialDataResponse,
# dialResponse, dialBack, dialBackResponse) and its addresses' verification
# state ("self-addrs"), so the checks below look at the wire, not exit codes.
#
# js refuses to dial back private addresses; FLARE_JS_PUBLIC_CIDRS (through
# public-cidrs.mjs) takes ranges off its private list. flare's server only
# dials back public addresses (TEST-NET too with --allow-testnet), never
# loopback. Hence two settings:
#  1. loopback 127.0.0.1, js with 127.0.0.0/8 public:
#     a. flare client -> js server: a real dial-back (js dials flare's listen
#        address, sends flare's nonce, flare answers OK); same IP as the
#        connection, so js asks no dial data; flare's verdict is public.
#     b. flare client -> js server with js's private list intact: js closes
#        the stream without any answer; flare ends with no verdict.
#     c. js client -> flare server: flare answers E_DIAL_REFUSED (dialStatus
#        UNUSED) without dialing; js's address stays unverified.
#  2. a private network namespace whose lo carries 203.0.113.1-3 (TEST-NET,
#     public for both sides there): real dial-backs with dial data both ways.
#     a. js client -> flare server (--allow-testnet): js's address has another
#        IP than its connection, so flare asks 30000-100000 bytes, js pays,
#        flare dials back from a fresh port with js's nonce, DialResponse
#        OK/OK, js marks its address verified.
#     b. flare client -> js server: flare asks about 203.0.113.3 over a
#        connection from 203.0.113.2; js asks dial data, flare pays exactly
#        that, js dials back, flare's verdict is public.
#     Needs root (unshare -n, ip); without it part 2 is reported as skipped.
# Exit 0 pass, 1 fail, 77 skip (no npm registry). About 12 s.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

# wait_grep FILE STRING: waits up to 15 s for STRING (fixed) in FILE.
wait_grep() {
    for _ in $(seq 150); do grep -qF "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    return 1
}
# stop PID: SIGTERM (the js peer prints "exit" and exits 0), then reap.
stop() {
    kill "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

# ---- 1a. js v2 server, flare client, loopback --------------------------------------
timeout 40 env FLARE_JS_PUBLIC_CIDRS=127.0.0.0/8 "$node" --import "$jshook" "$peer" \
    --listen /ip4/127.0.0.1/tcp/0 --autonat-v2 --exit-after-ms 30000 \
    >"$tmp/js1.out" 2>"$tmp/js1.err" &
js1=$!
pids+=("$js1")
wait_line "$tmp/js1.out" listening || { echo "js listener did not start"; cat "$tmp/js1.err"; exit 1; }
jsaddr=$(js_addr_of "$tmp/js1.out")
timeout 30 "$flare" autonat "$jsaddr" --listen /ip4/127.0.0.1/tcp/0 --allow-private \
    --timeout 20 --json >"$tmp/f1.out" 2>"$tmp/f1.err"
echo "{\"event\":\"exit\",\"code\":$?}" >>"$tmp/f1.out"
stop "$js1"
faddr=$(field "$tmp/f1.out" autonat_addr "e['addr']")
check "1a js announces /libp2p/autonat/2/dial-request (flare's identify)" "$tmp/f1.out" \
    'any("/libp2p/autonat/2/dial-request" in e["protocols"] for e in ev("autonat_server"))'
check "1a js decoded flare's DialRequest: flare's loopback listen address" "$tmp/js1.out" \
    "[e['addrs'] for e in v2('in', 'dialRequest')] == [['$faddr']] and '$faddr'.startswith('/ip4/127.0.0.1/tcp/')"
check "1a same IP as the connection: js asks no dial data" "$tmp/js1.out" \
    'not v2("out", "dialDataRequest")'
check "1a js dialed back with flare's nonce, flare answered DialBackResponse OK" "$tmp/js1.out" \
    '[e["nonce"] for e in v2("out", "dialBack")] == [v2("in", "dialRequest")[0]["nonce"]] and [e["status"] for e in v2("in", "dialBackResponse")] == ["OK"]'
check "1a js answered DialResponse OK, addrIdx 0, dialStatus OK" "$tmp/js1.out" \
    '[(e["status"], e["addrIdx"], e["dialStatus"]) for e in v2("out", "dialResponse")] == [("OK", 0, "OK")]'
check "1a flare's verdict: that address and IPv4 public" "$tmp/f1.out" \
    "[(e['addr'], e['state']) for e in ev('autonat_addr')] == [('$faddr', 'public')] and ev('autonat')[0]['ip4'] == 'public' and ev('autonat')[0]['status'] == 'ok' and ev('exit')[0]['code'] == 0"

# ---- 1b. js v2 server with its default private list -------------------------------
# js takes the request, then neither dials nor answers: it closes the stream
# (the spec would have E_DIAL_REFUSED). flare must end the probe at once,
# with no verdict, and not count it as an answer.
timeout 40 "$node" "$peer" --listen /ip4/127.0.0.1/tcp/0 --autonat-v2 --exit-after-ms 30000 \
    >"$tmp/js5.out" 2>"$tmp/js5.err" &
js5=$!
pids+=("$js5")
wait_line "$tmp/js5.out" listening || { echo "js listener did not start"; cat "$tmp/js5.err"; exit 1; }
start=$(date +%s)
timeout 30 "$flare" autonat "$(js_addr_of "$tmp/js5.out")" --listen /ip4/127.0.0.1/tcp/0 \
    --allow-private --timeout 20 --json >"$tmp/f5.out" 2>"$tmp/f5.err"
echo "{\"event\":\"exit\",\"code\":$?,\"secs\":$(($(date +%s) - start))}" >>"$tmp/f5.out"
stop "$js5"
check "1b js read the DialRequest and sent nothing back (loopback is private for it)" "$tmp/js5.out" \
    'len(v2("in", "dialRequest")) == 1 and not v2("out", "dialResponse") and not v2("out", "dialBack") and not v2("out", "dialDataRequest")'
check "1b js's own client asks nobody (its loopback address counts as verified)" "$tmp/js5.out" \
    'not v2("out", "dialRequest") and ev("self-addrs")[0]["addrs"][0]["verified"]'
check "1b flare: no verdict, status unreachable, without waiting for its timeout" "$tmp/f5.out" \
    '[e["state"] for e in ev("autonat_addr")] == ["unknown"] and ev("autonat")[0]["status"] == "unreachable" and ev("exit")[0]["code"] == 1 and ev("exit")[0]["secs"] < 10'

# ---- 1c. flare server, js v2 client, loopback ---------------------------------------
timeout 40 "$flare" listen --listen /ip4/127.0.0.1/tcp/0 --json >"$tmp/f2.out" 2>"$tmp/f2.err" &
f2=$!
pids+=("$f2")
wait_line "$tmp/f2.out" listening || { echo "flare listener did not start"; cat "$tmp/f2.err"; exit 1; }
faddr=$(addr_of "$tmp/f2.out")
timeout 40 env FLARE_JS_PUBLIC_CIDRS=127.0.0.0/8 "$node" --import "$jshook" "$peer" \
    --listen /ip4/127.0.0.1/tcp/0 --autonat-v2 --dial "$faddr" --stay --exit-after-ms 30000 \
    >"$tmp/js2.out" 2>"$tmp/js2.err" &
js2=$!
pids+=("$js2")
# js asks again after identify push: give that request a second too.
wait_grep "$tmp/js2.out" '"dir":"in","msg":"dialResponse"' && sleep 1
stop "$js2"
jsaddr=$(js_addr_of "$tmp/js2.out" | sed 's|/p2p/.*||')
check "1c js sent flare a DialRequest for its loopback address" "$tmp/js2.out" \
    "v2('out', 'dialRequest') and all(e['addrs'] == ['$jsaddr'] for e in v2('out', 'dialRequest'))"
check "1c flare answered E_DIAL_REFUSED, dialStatus UNUSED, for every request" "$tmp/js2.out" \
    'len(v2("in", "dialResponse")) == len(v2("out", "dialRequest")) and all((e["status"], e["dialStatus"]) == ("E_DIAL_REFUSED", "UNUSED") for e in v2("in", "dialResponse"))'
check "1c flare neither asked dial data nor dialed back" "$tmp/js2.out" \
    'not v2("in", "dialDataRequest") and not v2("in", "dialBack") and not ev("inbound")'
check "1c js's loopback address stays unverified" "$tmp/js2.out" \
    "not any(a['addr'] == '$jsaddr' and a['verified'] for e in ev('self-addrs') for a in e['addrs'])"
timeout 20 "$flare" ping "$faddr" -c 1 --json >"$tmp/f2p.out" 2>&1
check "1c the flare node still serves afterwards" "$tmp/f2p.out" 'len(ev("ping")) == 1'

# ---- 2. real dial-backs with dial data in a private network namespace ---------------
# Runs inside `unshare -n`: only this namespace's lo exists, carrying
# 203.0.113.1-3; nothing leaves it.
netns_part() {
    ip link set lo up && ip addr add 203.0.113.1/32 dev lo &&
        ip addr add 203.0.113.2/32 dev lo && ip addr add 203.0.113.3/32 dev lo || return 3
    local pub=203.0.113.0/24 fp jp faddr jsaddr
    # a. js client -> flare server
    timeout 30 "$flare" listen --listen /ip4/203.0.113.1/tcp/0 --allow-testnet --json \
        >"$tmp/f3.out" 2>"$tmp/f3.err" &
    fp=$!
    wait_line "$tmp/f3.out" listening || { stop $fp; return 4; }
    faddr=$(addr_of "$tmp/f3.out")
    timeout 40 env FLARE_JS_PUBLIC_CIDRS=$pub "$node" --import "$jshook" "$peer" \
        --listen /ip4/203.0.113.2/tcp/0 --autonat-v2 --dial "$faddr" --stay --exit-after-ms 30000 \
        >"$tmp/js3.out" 2>"$tmp/js3.err" &
    jp=$!
    wait_grep "$tmp/js3.out" '"verified":true' && sleep 1
    stop $jp
    stop $fp
    # b. flare client -> js server; flare dials from the wildcard listener's
    # port, so its connection comes from 203.0.113.2 and the address it asks
    # about (203.0.113.3) has another IP.
    timeout 30 env FLARE_JS_PUBLIC_CIDRS=$pub "$node" --import "$jshook" "$peer" \
        --listen /ip4/203.0.113.2/tcp/0 --autonat-v2 --exit-after-ms 25000 \
        >"$tmp/js4.out" 2>"$tmp/js4.err" &
    jp=$!
    wait_line "$tmp/js4.out" listening || { stop $jp; return 5; }
    jsaddr=$(js_addr_of "$tmp/js4.out")
    timeout 25 "$flare" autonat "$jsaddr" --listen /ip4/203.0.113.3/tcp/0 \
        --listen /ip4/0.0.0.0/tcp/0 --allow-private --timeout 20 --json \
        >"$tmp/f4.out" 2>"$tmp/f4.err"
    echo "{\"event\":\"exit\",\"code\":$?}" >>"$tmp/f4.out"
    stop $jp
    return 0
}
export flare node peer jshook tmp
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && command -v ip >/dev/null &&
    unshare -n true 2>/dev/null; then
    unshare -n bash -c "$(declare -f netns_part wait_line wait_grep stop field addr_of js_addr_of); netns_part"
    rc=$?
    [ $rc -eq 0 ] || { echo "netns part failed to run ($rc)"; fail=$((fail + 1)); }
    faddr=$(addr_of "$tmp/f3.out")
    fport=${faddr#*/tcp/}
    fport=${fport%%/*}
    jsaddr=$(js_addr_of "$tmp/js3.out" | sed 's|/p2p/.*||')
    check "2a js asked flare about its 203.0.113.2 address" "$tmp/js3.out" \
        "v2('out', 'dialRequest') and v2('out', 'dialRequest')[0]['addrs'] == ['$jsaddr']"
    check "2a flare asked dial data: addrIdx 0, 30000..100000 bytes" "$tmp/js3.out" \
        'v2("in", "dialDataRequest") and all(e["addrIdx"] == 0 and 30000 <= e["numBytes"] <= 100000 for e in v2("in", "dialDataRequest"))'
    check "2a js paid it (chunks of 4096)" "$tmp/js3.out" \
        'sum(e["bytes"] for e in v2("out", "dialDataResponse")) >= sum(e["numBytes"] for e in v2("in", "dialDataRequest")) and all(e["bytes"] == 4096 for e in v2("out", "dialDataResponse"))'
    check "2a flare dialed back from a port other than its listen port" "$tmp/js3.out" \
        "ev('inbound') and all('/tcp/$fport/' not in e['remoteAddr'] for e in ev('inbound'))"
    check "2a flare's DialBack carried js's nonce; js answered OK" "$tmp/js3.out" \
        'v2("in", "dialBack") and all(e["nonce"] in [r["nonce"] for r in v2("out", "dialRequest")] for e in v2("in", "dialBack")) and [e["status"] for e in v2("out", "dialBackResponse")] == ["OK"] * len(v2("in", "dialBack"))'
    check "2a flare answered DialResponse OK, addrIdx 0, dialStatus OK" "$tmp/js3.out" \
        'v2("in", "dialResponse") and all((e["status"], e["addrIdx"], e["dialStatus"]) == ("OK", 0, "OK") for e in v2("in", "dialResponse"))'
    check "2a js's verdict: its address verified" "$tmp/js3.out" \
        "any(a['addr'] == '$jsaddr' and a['verified'] for e in ev('self-addrs') for a in e['addrs'])"
    faddr=$(field "$tmp/f4.out" autonat_addr "e['addr']")
    check "2b js decoded flare's DialRequest for 203.0.113.3" "$tmp/js4.out" \
        "[e['addrs'] for e in v2('in', 'dialRequest')] == [['$faddr']] and '$faddr'.startswith('/ip4/203.0.113.3/tcp/')"
    check "2b js asked dial data (another IP); flare paid exactly that, chunks <= 4096" "$tmp/js4.out" \
        'len(v2("out", "dialDataRequest")) == 1 and 30000 <= v2("out", "dialDataRequest")[0]["numBytes"] <= 100000 and sum(e["bytes"] for e in v2("in", "dialDataResponse")) == v2("out", "dialDataRequest")[0]["numBytes"] and all(0 < e["bytes"] <= 4096 for e in v2("in", "dialDataResponse"))'
    check "2b js dialed back with flare's nonce, flare answered OK" "$tmp/js4.out" \
        '[e["nonce"] for e in v2("out", "dialBack")] == [v2("in", "dialRequest")[0]["nonce"]] and [e["status"] for e in v2("in", "dialBackResponse")] == ["OK"]'
    check "2b js answered DialResponse OK, addrIdx 0, dialStatus OK" "$tmp/js4.out" \
        '[(e["status"], e["addrIdx"], e["dialStatus"]) for e in v2("out", "dialResponse")] == [("OK", 0, "OK")]'
    check "2b flare's verdict: 203.0.113.3 public" "$tmp/f4.out" \
        "('$faddr', 'public') in [(e['addr'], e['state']) for e in ev('autonat_addr')] and ev('autonat')[0]['ip4'] == 'public' and ev('exit')[0]['code'] == 0"
else
    echo "skip 2 (real dial-backs in a network namespace): needs root, unshare and ip"
fi

finish
