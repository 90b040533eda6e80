#!/usr/bin/env python3
"""One socket operation against a service address, for ferry's kernel tests.

Prints one line per exchange, as key=value words, and exits 0 when every
exchange got an answer, 1 otherwise:

  reply=NAME from=ADDR:PORT peer=ADDR:PORT ms=N
  error=ECONNREFUSED stage=connect ms=N

Addresses print as the kernel gives them: 10.96.0.10:53, IPv6 ones in
brackets ([fd00:10:96::a]:53, v4-mapped [::ffff:10.96.0.10]:53).

  probe.py tcp ADDR PORT [--family 4|6] [--bind-port N] [--path /port] [--count N]
      connect, getpeername, one HTTP request; reply is the body. --count N:
      N such connections, one after the other, each on a new socket.
  probe.py udp ADDR PORT [ADDR PORT ...] [--connect] [--family 4|6] [--msg M]
          [--count N]
      one socket; for each target, send a datagram and read the answer.
      Unconnected (sendto/recvfrom) by default; --connect connects to each
      target in turn and also prints getpeername(). --count N: all that N
      times, each time on a new socket (a new source port: what N runs of
      the probe do, without N interpreter starts). --crossing: send to
      every target first, then read as many answers (replies that cross),
      one line each: reply=NAME from=ADDR:PORT.
  probe.py hold ADDR PORT --dir D [--family 4|6] [--wait S] [--udp [--connect]]
      a long-held TCP connection in line mode: writes D/first (the first
      answer) and D/lport, waits (bounded) for D/go, exchanges again and
      writes D/second ("error=..." on failure) and D/peer (getpeername()
      then), then closes.
      --udp: the same with one unconnected UDP socket (sendto/recvfrom);
      D/first and D/second then read "NAME from=ADDR:PORT". --udp --connect:
      one connected UDP socket (send/recv); they read "NAME peer=ADDR:PORT".

--family 6 with an IPv4 address uses an AF_INET6 socket and the v4-mapped
address (::ffff:a.b.c.d). --timeout bounds every wait (default 2 s).
"""

import argparse
import errno
import ipaddress
import os
import socket
import sys
import time


def errname(e):
    if isinstance(e, socket.timeout):
        return "timeout"
    return errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__


def target(addr, port, family):
    ip = ipaddress.ip_address(addr)
    if ip.version == 6:
        return socket.AF_INET6, (addr, port, 0, 0)
    if family == 6:
        return socket.AF_INET6, ("::ffff:" + addr, port, 0, 0)
    return socket.AF_INET, (addr, port)


def fmt(sa):
    if sa is None:
        return "-"
    host, port = sa[0], sa[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Clock:
    def __init__(self):
        self.t0 = time.monotonic()

    def ms(self):
        return int((time.monotonic() - self.t0) * 1000)


def http_get(addr, port, family, timeout, bind_port, path):
    fam, sa = target(addr, port, family)
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    clock, stage = Clock(), "bind"
    try:
        if bind_port:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", bind_port))
        stage = "connect"
        s.connect(sa)
        stage = "getpeername"
        peer = s.getpeername()
        stage = "send"
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: probe\r\n\r\n".encode())
        stage = "recv"
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        body = data.split(b"\r\n\r\n", 1)[1].decode().strip() if b"\r\n\r\n" in data else ""
        print(f"reply={body} peer={fmt(peer)} lport={s.getsockname()[1]} ms={clock.ms()}")
        return 0
    except OSError as e:
        print(f"error={errname(e)} stage={stage} ms={clock.ms()}")
        return 1
    finally:
        s.close()


def udp(targets, family, timeout, connect, msg, count):
    rc = 0
    for _ in range(count):
        rc |= udp_socket(targets, family, timeout, connect, msg)
    return rc


def udp_socket(targets, family, timeout, connect, msg):
    fams = {target(a, p, family)[0] for a, p in targets}
    fam = socket.AF_INET6 if socket.AF_INET6 in fams else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    rc = 0
    for addr, port in targets:
        _, sa = target(addr, port, 6 if fam == socket.AF_INET6 else family)
        clock, stage, peer = Clock(), "connect", None
        try:
            if connect:
                s.connect(sa)
                stage = "getpeername"
                peer = s.getpeername()
                stage = "send"
                s.send(msg.encode())
                stage = "recv"
                data, src = s.recvfrom(65535)
            else:
                stage = "sendto"
                s.sendto(msg.encode(), sa)
                stage = "recv"
                data, src = s.recvfrom(65535)
            print(f"reply={data.decode(errors='replace').strip()} from={fmt(src)} "
                  f"peer={fmt(peer)} ms={clock.ms()}")
        except OSError as e:
            print(f"error={errname(e)} stage={stage} ms={clock.ms()}")
            rc = 1
    s.close()
    return rc


def udp_crossing(targets, family, timeout, msg):
    fams = {target(a, p, family)[0] for a, p in targets}
    fam = socket.AF_INET6 if socket.AF_INET6 in fams else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    rc = 0
    try:
        for addr, port in targets:
            s.sendto(msg.encode(), target(addr, port, 6 if fam == socket.AF_INET6 else family)[1])
        for _ in targets:
            data, src = s.recvfrom(65535)
            print(f"reply={data.decode(errors='replace').strip()} from={fmt(src)}")
    except OSError as e:
        print(f"error={errname(e)} stage=crossing")
        rc = 1
    s.close()
    return rc


def write_atomic(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text + "\n")
    os.rename(path + ".tmp", path)


def exchange(s, line):
    s.sendall(line.encode() + b"\n")
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionResetError(errno.ECONNRESET, "closed by peer")
        data += chunk
    return data.decode().strip()


def udp_exchange(s, sa):
    s.sendto(b"hello", sa)
    data, src = s.recvfrom(65535)
    return f"{data.decode(errors='replace').strip()} from={fmt(src)}"


def udp_connected_exchange(s):
    s.send(b"hello")
    data = s.recv(65535)
    return f"{data.decode(errors='replace').strip()} peer={fmt(s.getpeername())}"


def hold(addr, port, family, timeout, d, wait, use_udp, connect):
    fam, sa = target(addr, port, family)
    s = socket.socket(fam, socket.SOCK_DGRAM if use_udp else socket.SOCK_STREAM)
    s.settimeout(timeout)
    if use_udp and connect:
        talk = lambda: udp_connected_exchange(s)
    elif use_udp:
        talk = lambda: udp_exchange(s, sa)
    else:
        talk = lambda: exchange(s, "again")
    try:
        if use_udp and connect:
            s.connect(sa)
            first = talk()
        elif use_udp:
            first = udp_exchange(s, sa)
        else:
            # So that a later probe can bind the same port (TIME_WAIT).
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.connect(sa)
            first = exchange(s, "hello")
        write_atomic(os.path.join(d, "lport"), str(s.getsockname()[1]))
        write_atomic(os.path.join(d, "first"), first)
    except OSError as e:
        write_atomic(os.path.join(d, "first"), f"error={errname(e)}")
        return 1
    deadline = time.monotonic() + wait
    go = os.path.join(d, "go")
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        if not os.path.exists(go):
            raise socket.timeout()
        write_atomic(os.path.join(d, "second"), talk())
        if not use_udp:
            write_atomic(os.path.join(d, "peer"), fmt(s.getpeername()))
        return 0
    except OSError as e:
        write_atomic(os.path.join(d, "second"), f"error={errname(e)}")
        return 1
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("op", choices=["tcp", "udp", "hold"])
    ap.add_argument("targets", nargs="+", help="ADDR PORT [ADDR PORT ...]")
    ap.add_argument("--family", type=int, choices=[4, 6], default=4)
    ap.add_argument("--timeout", type=float, default=2.0)
    ap.add_argument("--connect", action="store_true")
    ap.add_argument("--msg", default="hello")
    ap.add_argument("--bind-port", type=int, default=0)
    ap.add_argument("--path", default="/")
    ap.add_argument("--dir")
    ap.add_argument("--wait", type=float, default=60.0)
    ap.add_argument("--udp", action="store_true")
    ap.add_argument("--crossing", action="store_true")
    ap.add_argument("--count", type=int, default=1)
    args = ap.parse_args()
    if len(args.targets) % 2:
        ap.error("targets come in pairs: ADDR PORT")
    targets = [(args.targets[i], int(args.targets[i + 1])) for i in range(0, len(args.targets), 2)]
    if args.op == "tcp" and args.count > 1 and args.bind_port:
        ap.error("--count with --bind-port: the second connection could not bind")
    if args.op == "tcp":
        return max(http_get(*targets[0], args.family, args.timeout, args.bind_port, args.path)
                   for _ in range(args.count))
    if args.op == "udp" and args.crossing:
        return udp_crossing(targets, args.family, args.timeout, args.msg)
    if args.op == "udp":
        return udp(targets, args.family, args.timeout, args.connect, args.msg, args.count)
    if not args.dir:
        ap.error("hold needs --dir")
    return hold(*targets[0], args.family, args.timeout, args.dir, args.wait, args.udp,
                args.connect)


if __name__ == "__main__":
    sys.exit(main())
