"""The alert tests' loopback receiver behaves like a real server."""

import socket

from tests.alert_receivers import receiver  # noqa: F401 - the fixture


def test_a_request_cut_off_mid_body_is_not_received(receiver):  # noqa: F811
    """A sender killed after the headers (the kill soak SIGKILLs workers mid-send) left a
    request with an empty body among the received ones; a server never acts on half a
    message, and the sender's retry delivers it whole."""
    port = receiver.server.server_address[1]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"POST /cut HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"alert_id\"")
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(1024) == b""  # no answer: the connection is closed
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        body = b'{"alert_id": 1}'
        sock.sendall(b"POST /whole HTTP/1.1\r\nHost: x\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
        assert sock.recv(1024).startswith(b"HTTP/1.0 200")
    assert [(r.path, r.body) for r in receiver.received] == [("/whole", {"alert_id": 1})]
