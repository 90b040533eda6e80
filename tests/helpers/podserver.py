#!/usr/bin/env python3
"""A pod's servers for ferry's kernel tests and demo (stdlib only).

One process per pod. Every port listens on "::" dual-stack (IPV6_V6ONLY=0),
so one server answers the pod's IPv4 and IPv6 addresses.

  podserver.py --name web-1 --tcp 8080 --tcp 9090 --udp 53 [--ready-file F]

TCP: the first bytes decide the protocol.
  - DNS over TCP (a two-byte length, so a first byte of 0): each query gets
    the TXT answer below (`dig +tcp`).
  - An HTTP request ("GET / HTTP/1.1" ...): answered HTTP/1.0 style with the
    pod name as the body, then the connection closes (curl-friendly).
    `GET /port` answers "NAME:PORT" (the local port that was reached),
    `GET /peer` "NAME ADDR" (the source address this pod saw: a NAT's
    address or the client's own; IPv4 without the ::ffff: prefix).
  - Any other line: line mode, for long-held connections. Each line read is
    answered with "NAME\\n" until the client closes.
  Each connection has its own thread, so held connections block nobody.
UDP: each datagram is answered. A DNS query gets a TXT record holding the
  pod name (`dig @ADDR +short TXT whoami.test`); anything else gets the pod
  name. "port?" gets "NAME:PORT", "peer?" gets "NAME ADDR" (as GET /peer).

--ready-file is written once every socket is bound and listening.
SIGTERM or SIGINT ends the process.
"""

import argparse
import os
import selectors
import signal
import socket
import struct
import sys
import threading

HTTP_METHODS = (b"GET ", b"HEAD ", b"POST ", b"PUT ", b"DELETE ", b"OPTIONS ", b"PATCH ")
MAX_LINE = 8192
IDLE_TIMEOUT = 120.0  # seconds a connection may stay silent


def dual_stack_socket(kind, port):
    s = socket.socket(socket.AF_INET6, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    return s


def read_line(conn, buf):
    """Read one line (bytes, without the newline). Returns (line, rest) or
    (None, rest) at EOF before a newline."""
    while b"\n" not in buf:
        if len(buf) > MAX_LINE:
            return None, b""
        chunk = conn.recv(4096)
        if not chunk:
            return None, buf
        buf += chunk
    line, rest = buf.split(b"\n", 1)
    return line.rstrip(b"\r"), rest


def peer_addr(peer):
    """The source address a dual-stack socket saw, IPv4 unmapped."""
    addr = peer[0]
    return addr[7:] if addr.startswith("::ffff:") and "." in addr else addr


def serve_http(conn, name, port, first, buf):
    # Read the headers up to the blank line; the body, if any, is ignored.
    while True:
        line, buf = read_line(conn, buf)
        if line is None or line == b"":
            break
    path = first.split(b" ")[1] if first.count(b" ") >= 1 else b"/"
    if path == b"/port":
        body = f"{name}:{port}\n".encode()
    elif path == b"/peer":
        body = f"{name} {peer_addr(conn.getpeername())}\n".encode()
    else:
        body = f"{name}\n".encode()
    head = (
        "HTTP/1.0 200 OK\r\n"
        "Content-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-Pod: {name}\r\n"
        f"X-Served-Port: {port}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    conn.sendall(head if first.startswith(b"HEAD ") else head + body)


def serve_lines(conn, name, first, buf):
    reply = f"{name}\n".encode()
    line = first
    while line is not None:
        conn.sendall(reply)
        line, buf = read_line(conn, buf)


def read_exact(conn, buf, n):
    while len(buf) < n:
        chunk = conn.recv(4096)
        if not chunk:
            return None, buf
        buf += chunk
    return buf[:n], buf[n:]


def serve_dns_tcp(conn, name, buf):
    while True:
        head, buf = read_exact(conn, buf, 2)
        if head is None:
            return
        msg, buf = read_exact(conn, buf, struct.unpack("!H", head)[0])
        query = parse_dns_query(msg) if msg is not None else None
        if query is None:
            return
        answer = dns_txt_answer(query, name)
        conn.sendall(struct.pack("!H", len(answer)) + answer)


def handle_tcp(conn, name, port):
    try:
        conn.settimeout(IDLE_TIMEOUT)
        buf = conn.recv(4096)
        if buf[:1] == b"\0":
            serve_dns_tcp(conn, name, buf)
            return
        first, buf = read_line(conn, buf)
        if first is None:
            return
        if first.startswith(HTTP_METHODS):
            serve_http(conn, name, port, first, buf)
        else:
            serve_lines(conn, name, first, buf)
    except OSError:
        pass
    finally:
        try:
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        conn.close()


def parse_dns_query(data):
    """Return (id, question bytes, qname) when data is a standard DNS query,
    else None."""
    if len(data) < 12 + 5:
        return None
    qid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", data[:12])
    if flags & 0x8000 or (flags >> 11) & 0xF != 0 or qd != 1 or an or ns or ar > 1:
        return None
    i, labels = 12, []
    while True:
        if i >= len(data):
            return None
        n = data[i]
        if n == 0:
            i += 1
            break
        if n & 0xC0 or i + 1 + n > len(data):
            return None
        labels.append(data[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    if i + 4 > len(data):
        return None
    if ar == 0 and i + 4 != len(data):
        return None
    return qid, data[12:i + 4], ".".join(labels) + "."


def dns_txt_answer(query, text):
    qid, question, _ = query
    txt = text.encode()[:255]
    # QR=1, AA=1, RD copied as 1 (dig asks for recursion), RA=0, NOERROR.
    header = struct.pack("!HHHHHH", qid, 0x8500, 1, 1, 0, 0)
    rdata = bytes([len(txt)]) + txt
    answer = b"\xc0\x0c" + struct.pack("!HHIH", 16, 1, 0, len(rdata)) + rdata
    return header + question + answer


def handle_udp(sock, name, port):
    try:
        data, peer = sock.recvfrom(65535)
    except OSError:
        return
    query = parse_dns_query(data)
    if query is not None:
        reply = dns_txt_answer(query, name)
    elif data.strip() == b"port?":
        reply = f"{name}:{port}".encode()
    elif data.strip() == b"peer?":
        reply = f"{name} {peer_addr(peer)}".encode()
    else:
        reply = name.encode()
    try:
        sock.sendto(reply, peer)
    except OSError:
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", required=True)
    ap.add_argument("--tcp", type=int, action="append", default=[])
    ap.add_argument("--udp", type=int, action="append", default=[])
    ap.add_argument("--ready-file")
    args = ap.parse_args()
    if not args.tcp and not args.udp:
        ap.error("give at least one --tcp or --udp port")

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))

    sel = selectors.DefaultSelector()
    for port in args.tcp:
        s = dual_stack_socket(socket.SOCK_STREAM, port)
        s.listen(512)
        sel.register(s, selectors.EVENT_READ, ("tcp", port))
    for port in args.udp:
        s = dual_stack_socket(socket.SOCK_DGRAM, port)
        sel.register(s, selectors.EVENT_READ, ("udp", port))

    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{os.getpid()}\n")
        os.rename(tmp, args.ready_file)

    while True:
        for key, _ in sel.select():
            kind, port = key.data
            if kind == "udp":
                handle_udp(key.fileobj, args.name, port)
                continue
            try:
                conn, _ = key.fileobj.accept()
            except OSError:
                continue
            threading.Thread(target=handle_tcp, args=(conn, args.name, port),
                             daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
