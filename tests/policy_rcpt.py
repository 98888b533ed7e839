#!/usr/bin/python3
"""policy_rcpt.py SERVER RECIPIENT [CLIENT-ADDRESS]: one Postfix policy
delegation request at RCPT TO, as smtpd sends it, from CLIENT-ADDRESS
(default 127.0.0.2); prints the action ("DUNNO", "550 5.1.1 User unknown"),
or "BAD REPLY ..." for anything else. SERVER is a unix socket path, or
HOST:PORT for TCP. Used by the test scripts that ask a policy server."""
import socket
import sys


def connect(server):
    if server.startswith("/"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(server)
        return s
    host, port = server.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=5)


def main():
    server, recipient = sys.argv[1], sys.argv[2]
    client = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.2"
    s = connect(server)
    s.sendall(("request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
               "client_address=%s\nclient_name=unknown\nhelo_name=client.invalid\n"
               "sender=sender@sender.invalid\nrecipient=%s\nqueue_id=\n\n" % (client, recipient)).encode())
    reply = b""
    while not reply.endswith(b"\n\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        reply += chunk
    line = reply.decode(errors="replace").split("\n")[0]
    print(line[len("action="):] if line.startswith("action=") else "BAD REPLY " + repr(reply))


if __name__ == "__main__":
    main()
