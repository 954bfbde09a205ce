#!/usr/bin/env bash
# A peer that never reads cannot grow the node's memory: 200 MB of yamux
# PINGs (each would be answered) leave the relay's peak RSS under 64 MB, the
# node stops reading from that peer (its sends stall) and drops the
# connection; a pre-handshake flood of multistream "ls" is cut off. The node
# answers an honest ping afterwards.
source "$(dirname "$0")/lib.sh"

# The keepalive drops the paused connection: nothing is read from it, so the
# ping comes --keepalive seconds later and times out 10 s after that.
start_kind r relay --keepalive 10 || { bad "relay did not start"; finish; exit; }
out=$("$attack" ping-flood "$r_hp" --bytes 200e6 --stall 2 --wait 30)
echo "  $out"
if ! alive "$r_pid"; then
    bad "relay died during the ping flood (exit $(exit_of "$r_pid"))"
    finish
    exit
fi
hwm=$(mem_kb "$r_pid" VmHWM)
echo "  relay VmHWM ${hwm} kB, VmRSS $(mem_kb "$r_pid" VmRSS) kB"
[ "${hwm:-999999}" -lt 65536 ] && ok "peak RSS under 64 MB (${hwm} kB)" || bad "peak RSS ${hwm} kB"
sent=$(kv "$out" sent)
[ "$(kv "$out" outcome)" = closed ] && ok "flooding connection closed (after ${sent} bytes)" ||
    bad "flooding connection not closed: $out"
python3 -c "import sys; sys.exit(0 if float('${sent:-0}') < 100e6 else 1)" &&
    ok "the relay stopped reading (sends stalled at ${sent} bytes)" || bad "relay kept reading: $out"

out=$("$attack" ls-flood "$r_hp" --bytes 30e6 --stall 2 --wait 10)
echo "  $out"
[ "$(kv "$out" outcome)" = closed ] && ok "ls flood cut off" || bad "ls flood not cut off: $out"
hwm=$(mem_kb "$r_pid" VmHWM)
[ "${hwm:-999999}" -lt 65536 ] && ok "peak RSS still under 64 MB (${hwm} kB)" || bad "peak RSS ${hwm} kB"
answers "$r_addr" && ok "relay answers a ping afterwards" || bad "relay does not answer a ping"
finish
