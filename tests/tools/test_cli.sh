#!/usr/bin/env bash
# The flare CLI: id (seed, key file creation with mode 0600, reload), multiaddr
# inspection (binary form, components, classification, relayed), bad input.
source "$(dirname "$0")/lib.sh"
json() { python3 -c "import json,sys; print(json.loads(sys.stdin.readline())$1)"; }

seed=$(printf '07%.0s' $(seq 32))
a=$("$flare" id --seed "$seed" --json | json "['peerId']")
b=$("$flare" id --seed "$seed" --json | json "['peerId']")
[ -n "$a" ] && [ "$a" = "$b" ] && [[ $a == 12D3KooW* ]] && ok "id from seed is stable ($a)" || bad "id from seed"

"$flare" id --key "$tmp/k" --json >"$tmp/id1" && id1=$(json "['peerId']" <"$tmp/id1")
mode=$(stat -c %a "$tmp/k" 2>/dev/null)
[ "$mode" = 600 ] && ok "key file created with mode 0600" || bad "key file mode ($mode)"
id2=$("$flare" id --key "$tmp/k" --json | json "['peerId']")
[ "$id1" = "$id2" ] && ok "key file reloads to the same peer id" || bad "key reload"
cid=$("$flare" id --key "$tmp/k" --json | json "['cid']")
[[ $cid == bafz* ]] && ok "CIDv1 form ($cid)" || bad "cid form ($cid)"
echo garbage >"$tmp/badkey"
"$flare" id --key "$tmp/badkey" >/dev/null 2>&1 && bad "corrupt key file accepted" || ok "corrupt key file refused"
"$flare" id --seed 12 >/dev/null 2>&1 && bad "short seed accepted" || ok "short seed refused"

out=$("$flare" multiaddr /ip4/127.0.0.1/tcp/4001 --json)
[ "$(json "['bytes']" <<<"$out")" = 047f000001060fa1 ] && ok "multiaddr binary form" || bad "binary form: $out"
[ "$(json "['class']" <<<"$out")" = loopback ] && ok "loopback class" || bad "class: $out"
[ "$(json "['components'][1]['value']" <<<"$out")" = 4001 ] && ok "components" || bad "components: $out"
r="/ip4/198.51.100.7/tcp/4001/p2p/$a/p2p-circuit/p2p/$a"
out=$("$flare" multiaddr "$r" --json)
[ "$(json "['relayed']" <<<"$out")" = True ] && ok "relayed address detected" || bad "relayed: $out"
"$flare" multiaddr /ip4/1.2.3/tcp/1 >/dev/null 2>&1 && bad "invalid multiaddr accepted" || ok "invalid multiaddr refused"
out=$("$flare" multiaddr /ip4/1.2.3.4/tcp/70000 --json 2>/dev/null)
grep -q '"event":"error"' <<<"$out" && ok "error reported as JSON" || bad "no JSON error: $out"
"$flare" frobnicate >/dev/null 2>&1; [ $? -eq 2 ] && ok "unknown command exits 2" || bad "unknown command"
finish
