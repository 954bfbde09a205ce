#!/usr/bin/env python3
"""flare lab probe: tiny UDP/TCP tools that print one JSON line per result.

Subcommands (run inside a lab namespace with `lab/lab.sh exec NODE ...`):
  echo-server --port P        UDP+TCP server; replies "ip:port" of the source it
                              saw (UDP: payload "rtt..." is echoed verbatim).
  mapping --servers A:P,B:P --proto udp|tcp [--lport N]
                              one inner socket (one local port) talks to every
                              server; prints the external ip:port each one saw.
  connect IP PORT --proto tcp|udp [--lport N]
                              unsolicited contact; result ok|refused|timeout.
  listen --port P --proto tcp|udp
                              accepts and reports inbound contacts.
  simopen --lport P --peer IP:PORT --at T
                              TCP simultaneous open: bind P, wait for wall-clock
                              T, connect; result ok|refused|timeout.
  rtt IP PORT [--count N]     UDP round trips to an echo-server; min/median ms.
Only the standard library; every wait is bounded by --timeout.
"""
import argparse
import errno
import json
import os
import select
import socket
import statistics
import sys
import threading
import time


def emit(**kw):
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


def addr(s):
    host, port = s.rsplit(":", 1)
    return host, int(port)


def reuse_sock(kind, lport):
    s = socket.socket(socket.AF_INET, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("0.0.0.0", lport))
    return s


def echo_server(a):
    u = reuse_sock(socket.SOCK_DGRAM, a.port)
    t = reuse_sock(socket.SOCK_STREAM, a.port)
    t.listen(64)

    def udp_loop():
        while True:
            data, src = u.recvfrom(2048)
            if data.startswith(b"rtt"):
                u.sendto(data, src)
            else:
                u.sendto(("%s:%d" % src).encode(), src)

    def tcp_one(c, src):
        with c:
            c.settimeout(5)
            try:
                c.sendall(("%s:%d\n" % src).encode())
                c.recv(16)  # wait for the client to close first (no TIME_WAIT here)
            except OSError:
                pass

    threading.Thread(target=udp_loop, daemon=True).start()
    emit(event="listening", port=a.port)
    while True:
        c, src = t.accept()
        threading.Thread(target=tcp_one, args=(c, src), daemon=True).start()


def mapping(a):
    servers = [addr(s) for s in a.servers.split(",")]
    seen = []
    if a.proto == "udp":
        s = reuse_sock(socket.SOCK_DGRAM, a.lport)
        local = "%s:%d" % s.getsockname()
        for srv in servers:
            reply = None
            for _ in range(3):  # UDP: retry a lost datagram
                s.sendto(b"who", srv)
                r, _, _ = select.select([s], [], [], a.timeout / 3)
                if r:
                    reply = s.recvfrom(2048)[0].decode()
                    break
            seen.append(reply)
    else:
        socks = []
        lport = a.lport
        for srv in servers:
            s = reuse_sock(socket.SOCK_STREAM, lport)
            lport = s.getsockname()[1]  # every dial leaves from the same port
            s.settimeout(a.timeout)
            try:
                s.connect(srv)
                seen.append(s.makefile().readline().strip())
            except OSError:
                seen.append(None)
            socks.append(s)
        local = "0.0.0.0:%d" % lport
        for s in socks:
            s.close()
    emit(event="mapping", proto=a.proto, local=local, seen=seen)


def connect(a):
    dst = (a.ip, a.port)
    result = "timeout"
    if a.proto == "tcp":
        s = reuse_sock(socket.SOCK_STREAM, a.lport)
        s.settimeout(a.timeout)
        try:
            s.connect(dst)
            result = "ok"
        except ConnectionRefusedError:
            result = "refused"
        except (socket.timeout, TimeoutError):
            result = "timeout"
        except OSError as e:
            result = "error:%s" % errno.errorcode.get(e.errno, e.errno)
    else:
        s = reuse_sock(socket.SOCK_DGRAM, a.lport)
        s.connect(dst)  # connected: an ICMP port unreachable becomes ECONNREFUSED
        deadline = time.monotonic() + a.timeout
        while time.monotonic() < deadline and result == "timeout":
            try:
                s.send(b"hello")
            except ConnectionRefusedError:
                result = "refused"
                break
            r, _, _ = select.select([s], [], [], 0.5)
            if r:
                try:
                    s.recv(2048)
                    result = "ok"
                except ConnectionRefusedError:
                    result = "refused"
    emit(event="connect", proto=a.proto, dst="%s:%d" % dst, result=result)


def listen(a):
    kind = socket.SOCK_STREAM if a.proto == "tcp" else socket.SOCK_DGRAM
    s = reuse_sock(kind, a.port)
    if a.proto == "tcp":
        s.listen(16)
    emit(event="listening", proto=a.proto, port=a.port)
    deadline = time.monotonic() + a.timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([s], [], [], max(0, deadline - time.monotonic()))
        if not r:
            break
        if a.proto == "tcp":
            c, src = s.accept()
            c.close()
        else:
            data, src = s.recvfrom(2048)
            s.sendto(b"ack", src)
        emit(event="inbound", proto=a.proto, src="%s:%d" % src)


def simopen(a):
    peer = addr(a.peer)
    s = reuse_sock(socket.SOCK_STREAM, a.lport)
    delay = a.at - time.time()
    if 0 < delay < 60:
        time.sleep(delay)
    s.settimeout(a.timeout)
    t0 = time.monotonic()
    try:
        s.connect(peer)
        s.sendall(b"hi\n")
        data = s.recv(16)
        result = "ok" if data.startswith(b"hi") else "bad-data"
    except ConnectionRefusedError:
        result = "refused"
    except (socket.timeout, TimeoutError):
        result = "timeout"
    except OSError as e:
        result = "error:%s" % errno.errorcode.get(e.errno, e.errno)
    emit(event="simopen", peer=a.peer, lport=a.lport, result=result,
         ms=round((time.monotonic() - t0) * 1000, 1))


def rtt(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((a.ip, a.port))
    samples = []
    for i in range(a.count):
        tag = b"rtt%d" % i
        t0 = time.monotonic()
        s.send(tag)
        deadline = t0 + a.timeout
        while True:
            r, _, _ = select.select([s], [], [], max(0, deadline - time.monotonic()))
            if not r:
                break
            if s.recv(2048) == tag:
                samples.append((time.monotonic() - t0) * 1000)
                break
        time.sleep(0.02)
    if samples:
        emit(event="rtt", dst="%s:%d" % (a.ip, a.port), count=len(samples),
             min_ms=round(min(samples), 2), median_ms=round(statistics.median(samples), 2),
             max_ms=round(max(samples), 2))
    else:
        emit(event="rtt", dst="%s:%d" % (a.ip, a.port), count=0)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("echo-server")
    c.add_argument("--port", type=int, default=7000)
    c = sub.add_parser("mapping")
    c.add_argument("--servers", required=True)
    c.add_argument("--proto", choices=["udp", "tcp"], default="udp")
    c.add_argument("--lport", type=int, default=0)
    c.add_argument("--timeout", type=float, default=3)
    c = sub.add_parser("connect")
    c.add_argument("ip")
    c.add_argument("port", type=int)
    c.add_argument("--proto", choices=["udp", "tcp"], default="tcp")
    c.add_argument("--lport", type=int, default=0)
    c.add_argument("--timeout", type=float, default=2)
    c = sub.add_parser("listen")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--proto", choices=["udp", "tcp"], default="tcp")
    c.add_argument("--timeout", type=float, default=10)
    c = sub.add_parser("simopen")
    c.add_argument("--lport", type=int, required=True)
    c.add_argument("--peer", required=True)
    c.add_argument("--at", type=float, default=0)
    c.add_argument("--timeout", type=float, default=3)
    c = sub.add_parser("rtt")
    c.add_argument("ip")
    c.add_argument("port", type=int)
    c.add_argument("--count", type=int, default=10)
    c.add_argument("--timeout", type=float, default=2)
    a = p.parse_args()
    {"echo-server": echo_server, "mapping": mapping, "connect": connect, "listen": listen,
     "simopen": simopen, "rtt": rtt}[a.cmd](a)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
