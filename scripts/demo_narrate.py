#!/usr/bin/env python3
"""Live narration of the NAT lab hole punch (scripts/demo.sh).

usage: demo_narrate.py LOGDIR STOPFILE

Follows LOGDIR/{relay,a,b}.log (JSON events of the flare processes, written
by lab/scenarios/holepunch.sh) and explains each step in words as it
happens, until STOPFILE exists and the logs are drained. While a punch
attempt waits for its dials, it prints a progress line every 2 s.
"""
import json
import os
import sys
import time

STEPS = {
    "relay-up": "the relayed connection is up: DCUtR starts on it",
    "direct-dial": "first a plain direct dial to the other's known addresses (a NAT usually drops it)",
    "connect-sent": "sends CONNECT over the relay: \"here are my public addresses\"",
    "connect-received": "got the other's CONNECT with its public addresses",
    "rtt": "measured the round trip over the relay",
    "sync-sent": "sends SYNC, then waits half a round trip so both dials leave at the same moment",
    "sync-received": "got SYNC: dials at once",
    "dial-start": "dials the other's public address from its own listen port; the outgoing SYN opens "
                  "a hole in its NAT for the other's SYN",
    "direct-up": "the two dials met: a direct TCP connection through both NATs",
    "attempt-failed": "this attempt failed",
    "gave-up": "gives up: the connection stays on the relay",
}
REASONS = {
    "dial-timeout": "no SYN got through (a symmetric NAT maps each destination to a new port, "
                    "so the other side dialed the wrong one)",
    "dial": "the direct dial was refused",
    "no-addrs": "no public address to try",
}
NAMES = {"a": "A", "b": "B", "relay": "R"}


def describe(node, e):
    k = e["event"]
    who = NAMES[node]
    if k == "listening" and node == "relay":
        return "relay listening at " + e["addr"]
    if k == "reservation":
        return "B reserved a slot on the relay: others reach B at .../p2p-circuit/p2p/" + e["addr"][-8:]
    if k == "relay_circuit_opened":
        return "relay: a circuit from A to B is open (R forwards bytes it cannot read)"
    if k == "connected" and "/p2p-circuit" in e.get("addr", "") and node == "a":
        return "A is connected to B THROUGH THE RELAY (Noise end to end, limited)"
    if k == "holepunch_step":
        s = e["step"]
        text = STEPS.get(s, s)
        if s == "rtt" and e.get("rttMs"):
            text += ": %.0f ms" % e["rttMs"]
        if s in ("attempt-failed", "gave-up") and e.get("reason"):
            text += ": " + REASONS.get(e["reason"], e["reason"])
        if s == "attempt-failed" and e.get("attempt", 3) < 3:
            text += "; trying again (attempt %d of 3)" % (e["attempt"] + 1)
        att = " [attempt %s]" % e["attempt"] if e.get("attempt") else ""
        return "%s %s%s" % (who, text, att)
    if k == "holepunch":
        if e["result"] == "direct":
            return "%s: HOLE PUNCHED, direct connection to %s" % (who, e.get("addr"))
        return "%s: hole punch FAILED (%s): staying on the relay" % (who, e.get("reason"))
    if k == "ping" and node == "a":
        return "A pings B over the direct connection: %.1f ms" % e["rttMs"]
    if k == "echo":
        via = "the relay" if e.get("relayed") else "the DIRECT connection"
        return "A's message %r came back over %s" % (e["reply"], via)
    return None


def main():
    logdir, stop = sys.argv[1], sys.argv[2]
    files, pos = {}, {n: 0 for n in NAMES}
    t0 = None
    last_out, punching, attempt = time.time(), False, 0
    quiet_since_stop = None
    while True:
        got = False
        for n in NAMES:
            path = os.path.join(logdir, n + ".log")
            if n not in files:
                if not os.path.exists(path):
                    continue
                files[n] = open(path, encoding="utf-8", errors="replace")
            for line in files[n].readlines():
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                got = True
                t0 = t0 or e.get("ts", time.time())
                if e["event"] == "holepunch_step":
                    punching = e["step"] not in ("direct-up", "gave-up")
                    attempt = e.get("attempt", attempt)
                d = describe(n, e)
                if d:
                    print("  %7.3f s  %s" % (e.get("ts", t0) - t0, d), flush=True)
                    last_out = time.time()
        if punching and time.time() - last_out > 2:
            print("  ...        attempt %d: waiting for the simultaneous dials (5 s timeout)" % attempt,
                  flush=True)
            last_out = time.time()
        if os.path.exists(stop):
            if got:
                quiet_since_stop = None
            elif quiet_since_stop is None:
                quiet_since_stop = time.time()
            elif time.time() - quiet_since_stop > 0.5:
                return 0
        time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main())
