#!/usr/bin/env python3
"""Raw-socket attackers for the attack tests (loopback only).

  attacker.py idle  HOST PORT N HOLD_S SRC...   N idle TCP connections
  attacker.py loris HOST PORT N HOLD_S SRC...   N connections that trickle a
      multistream header one byte per second and never finish the handshake

Connections go round-robin over the source addresses SRC (loopback
addresses such as 127.0.2.1). Prints "ready OPEN" once every connect was
tried (OPEN: how many succeeded), then holds them for HOLD_S seconds (or
until a line or EOF on stdin) and prints "alive K": how many the node had not closed.
"""
import select
import socket
import sys
import time

HEADER = b"\x13/multistream/1.0.0\n"


def open_all(host, port, n, srcs):
    socks = []
    pending = []
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.bind((srcs[i % len(srcs)], 0))
            s.connect_ex((host, port))
        except OSError:
            s.close()
            continue
        pending.append(s)
        # Keep the listener's accept queue from overflowing.
        if len(pending) >= 64:
            socks += finish(pending)
            pending = []
    socks += finish(pending)
    return socks


def finish(pending):
    done = []
    deadline = time.time() + 3
    while pending and time.time() < deadline:
        p = select.poll()  # select() stops at descriptor 1024
        byfd = {s.fileno(): s for s in pending}
        for fd in byfd:
            p.register(fd, select.POLLOUT)
        for fd, _ in p.poll(200):
            s = byfd[fd]
            pending.remove(s)
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                done.append(s)
            else:
                s.close()
    for s in pending:
        s.close()
    return done


def alive(socks):
    """Sockets still ESTABLISHED (the node neither closed nor reset them)."""
    n = 0
    for s in socks:
        try:
            n += s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] == 1
        except OSError:
            pass
    return n


def main():
    mode, host, port, n, hold = sys.argv[1:6]
    srcs = sys.argv[6:] or ["127.0.0.1"]
    socks = open_all(host, int(port), int(n), srcs)
    print("ready %d of %s" % (len(socks), n), flush=True)
    end = time.time() + float(hold)
    step = 0
    while time.time() < end:
        if mode == "loris" and step < len(HEADER):
            for s in socks:
                try:
                    s.send(HEADER[step : step + 1])
                except OSError:
                    pass
            step += 1
        r, _, _ = select.select([sys.stdin], [], [], 1.0)
        if r:  # a line (or EOF) on stdin: stop holding
            break
    print("alive %d" % alive(socks), flush=True)


if __name__ == "__main__":
    main()
