"""A minimal milter client for what miltertest cannot send: a header of
64 KiB (it crashes miltertest) or a connection from port 0 (miltertest
always sends a port). It speaks to a unitmilter socket as Postfix does:
negotiate (protocol 6, every action and step), connect, one recipient, the
headers, end of message."""
import socket
import struct
import sys

SMFIP_NR_HDR, SMFIP_NR_CONN, SMFIP_NR_RCPT = 0x80, 0x1000, 0x8000


def packet(cmd, data=b""):
    return struct.pack(">I", len(data) + 1) + cmd + data


def read_packet(s):
    def exactly(n):
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                sys.exit("the filter closed the connection")
            buf += chunk
        return buf
    size = struct.unpack(">I", exactly(4))[0]
    body = exactly(size)
    return body[:1], body[1:]


def session(path, hostname, port, address, headers):
    """One message from HOSTNAME[ADDRESS]:PORT (IPv4) to <a@example.com>
    with HEADERS, a list of (name, value) as bytes. Returns the edits the
    filter asked for, (command, data) each, before it accepted the message;
    exits with a message when the filter refused it."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(path)
    s.sendall(packet(b"O", struct.pack(">III", 6, 0x1FF, 0x1FFFFF)))
    _, data = read_packet(s)
    _, _, steps = struct.unpack(">III", data[:12])
    s.sendall(packet(b"C", hostname + b"\0" + b"4" + struct.pack(">H", port) + address + b"\0"))
    if not steps & SMFIP_NR_CONN:
        read_packet(s)
    s.sendall(packet(b"R", b"<a@example.com>\0"))
    if not steps & SMFIP_NR_RCPT:
        read_packet(s)
    for name, value in headers:
        s.sendall(packet(b"L", name + b"\0" + value + b"\0"))
        if not steps & SMFIP_NR_HDR:
            read_packet(s)
    s.sendall(packet(b"E"))
    edits = []
    while True:
        cmd, data = read_packet(s)
        if cmd in (b"m", b"h"):
            edits.append((cmd, data))
        elif cmd in (b"c", b"a"):
            return edits
        elif cmd in (b"t", b"r", b"y", b"d"):
            sys.exit("message refused: %r %r" % (cmd, data))
