"""Opens N idle HTTP/2 connections over TLS to 127.0.0.1:PORT and holds them.

Each connection completes the TLS handshake (ALPN h2), sends the HTTP/2
client preface and an empty SETTINGS frame, reads until the server's
SETTINGS arrived, and acknowledges it: a connection a client set up and
has not used yet. Prints "ready N" once all are open, then holds them
until stdin closes (or --hold seconds pass), then closes them.

    idle_conns.py PORT N [--hold SECONDS]
"""
import select
import socket
import ssl
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"      # empty SETTINGS
SETTINGS_ACK = b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"


def read_server_settings(s, deadline):
    """Reads frames until a non-ACK SETTINGS frame from the server."""
    buf = b""
    while time.monotonic() < deadline:
        while len(buf) >= 9:
            n = int.from_bytes(buf[0:3], "big")
            ftype, flags = buf[3], buf[4]
            if len(buf) < 9 + n:
                break
            buf = buf[9 + n:]
            if ftype == 4 and not flags & 1:
                return
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection before its SETTINGS")
        buf += chunk
    raise TimeoutError("no SETTINGS from the server")


def main():
    port, n = int(sys.argv[1]), int(sys.argv[2])
    hold = float(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--hold" else 600.0
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # loopback, dev certificate; not what is measured
    ctx.set_alpn_protocols(["h2"])
    conns = []
    deadline = time.monotonic() + 120
    for i in range(n):
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        s = ctx.wrap_socket(raw, server_hostname="localhost")
        if s.selected_alpn_protocol() != "h2":
            sys.exit("idle_conns: connection %d: server did not select ALPN h2" % i)
        s.sendall(PREFACE + SETTINGS)
        read_server_settings(s, deadline)
        s.sendall(SETTINGS_ACK)
        conns.append(s)
    print("ready %d" % len(conns), flush=True)
    end = time.monotonic() + hold
    while time.monotonic() < end:
        r, _, _ = select.select([sys.stdin], [], [], max(0.0, min(1.0, end - time.monotonic())))
        if r and not sys.stdin.read(1):
            break
    for s in conns:
        s.close()


if __name__ == "__main__":
    main()
