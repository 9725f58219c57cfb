"""DNS rebinding: a send connects to the addresses the outbound policy checked, never to what
the name resolves to a moment later. DNS is outside the product: `socket.getaddrinfo` is
replaced by a resolver the test scripts (one answer per lookup, the last repeated); the
receivers are real, on loopback, over HTTP, HTTPS and SMTP."""

from __future__ import annotations

import datetime as dt
import socket
import ssl

import pytest
import sqlalchemy as sa

from dashboard.alerts import delivery, service
from dashboard.alerts.models import AlertDelivery
from dashboard.models import db
from tests.alert_receivers import Receiver

SIGNING = "a-signing-secret-for-the-tests"
NAME = "hooks.rebind.test"
ALLOWED_ELSEWHERE = "192.0.2.10"  # passes a policy allowing private networks; nobody answers
METADATA = "169.254.169.254"  # never allowed; nobody answers here either


class ScriptedDNS:
    """Answers for the test's names, in order per lookup; every other name resolves as usual."""

    def __init__(self, real):
        self.real = real
        self.answers: dict[str, list[str]] = {}
        self.lookups: list[str] = []

    def script(self, name: str, *answers: str | tuple[str, ...]) -> None:
        """Each answer: an address, or several (one record set)."""
        self.answers[name] = [(a,) if isinstance(a, str) else a for a in answers]

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else host
        if name not in self.answers:
            return self.real(host, port, family, type, proto, flags)
        self.lookups.append(name)
        queue = self.answers[name]
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "",
                 (address, int(port or 0))) for address in answer]


@pytest.fixture
def dns(monkeypatch):
    scripted = ScriptedDNS(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", scripted)
    return scripted


@pytest.fixture
def policy(app, monkeypatch):
    """Short sends, one attempt: a connection that goes nowhere ends the test quickly."""
    for key, value in {"ALERT_SEND_TIMEOUT": 0.5, "ALERT_MAX_ATTEMPTS": 1,
                       "ALERTS_ALLOW_HTTP": True}.items():
        monkeypatch.setitem(app.config, key, value)
    return app.config


def drain(app) -> None:
    for _ in range(20):
        if not delivery.work_once(app):
            return


def rows() -> list[AlertDelivery]:
    db.session.expire_all()
    return db.session.scalars(sa.select(AlertDelivery).order_by(AlertDelivery.id)).all()


def send_test(accounts, **data) -> None:
    dest = service.save_destination({"name": "d", **data}, accounts.admin)
    service.test_send(dest.id, accounts.admin)


def test_a_name_rebound_to_this_machine_after_the_check_is_not_reached(
        app, accounts, receiver, dns, policy, monkeypatch):
    """The attack: the name passes the check with an allowed address, then resolves to
    127.0.0.1 (refused by this policy) for the connection. The send goes to the checked
    address (which does not answer), never to the receiver on this machine."""
    monkeypatch.setitem(policy, "ALERTS_ALLOW_LOOPBACK", False)
    monkeypatch.setitem(policy, "ALERTS_ALLOW_PRIVATE", True)
    port = receiver.server.server_address[1]
    dns.script(NAME, ALLOWED_ELSEWHERE)
    send_test(accounts, kind="slack", target=f"http://{NAME}:{port}/hook")
    dns.script(NAME, ALLOWED_ELSEWHERE, "127.0.0.1")  # the check's answer, then the rebind
    drain(app)
    [row] = rows()
    assert receiver.received == []
    assert (row.status, row.last_error) in {("dead", "timed out"), ("dead", "could not connect")}
    assert dns.lookups == [NAME, NAME]  # saving and the send's check: the connection asked not


def test_the_send_keeps_the_name_and_connects_to_the_checked_address(
        app, accounts, receiver, dns, policy, monkeypatch):
    for variable in ("HTTP_PROXY", "ALL_PROXY"):  # a proxy would resolve the name itself
        monkeypatch.setenv(variable, "http://127.0.0.1:9")
    port = receiver.server.server_address[1]
    dns.script(NAME, "127.0.0.1")
    send_test(accounts, kind="webhook", target=f"http://{NAME}:{port}/hook",
              signing_secret=SIGNING)
    dns.script(NAME, "127.0.0.1", METADATA)  # rebound after the check: not followed
    drain(app)
    [row] = rows()
    assert row.status == "delivered"
    [got] = receiver.received
    assert got.headers["Host"] == f"{NAME}:{port}" and got.path == "/hook"


def test_a_checked_address_that_refuses_gives_way_to_the_next(app, accounts, receiver, dns,
                                                              policy):
    """Two records, both checked: nobody listens on 127.0.0.2, the receiver on 127.0.0.1."""
    port = receiver.server.server_address[1]
    dns.script(NAME, ("127.0.0.2", "127.0.0.1"))
    send_test(accounts, kind="slack", target=f"http://{NAME}:{port}/hook")
    drain(app)
    [row] = rows()
    assert row.status == "delivered" and len(receiver.received) == 1


def certificate_for(name: str, directory) -> tuple[str, str]:
    """A self-signed certificate for `name` (PEM files): what a receiver over HTTPS shows."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def test_https_verifies_the_certificate_against_the_name_not_the_address(
        app, accounts, dns, policy, tmp_path, monkeypatch):
    """Connected to 127.0.0.1, TLS still sends the name (SNI) and checks the certificate
    against it: the receiver's certificate is for NAME, so NAME is delivered and another name
    resolving to the same address is refused."""
    cert, key = certificate_for(NAME, tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert)  # the receiver's certificate is trusted
    server_names: list[str | None] = []
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    tls.sni_callback = lambda sock, name, context: server_names.append(name)
    receiver = Receiver(tls=tls).start()
    try:
        port = receiver.server.server_address[1]
        dns.script(NAME, "127.0.0.1")
        dns.script("other.rebind.test", "127.0.0.1")
        send_test(accounts, kind="slack", target=f"https://{NAME}:{port}/ok")
        send_test(accounts, kind="slack", target=f"https://other.rebind.test:{port}/no",
                  name="other")
        drain(app)
        good, other = rows()
        assert good.status == "delivered" and [r.path for r in receiver.received] == ["/ok"]
        assert (other.status, other.last_error) == ("dead", "could not connect")
        assert server_names == [NAME, "other.rebind.test"]
    finally:
        receiver.stop()


def test_smtp_connects_to_the_checked_address(app, accounts, smtp_server, dns, policy):
    dns.script("mail.rebind.test", "127.0.0.1")
    send_test(accounts, kind="email", host="mail.rebind.test", port=str(smtp_server.port),
              starttls="false", **{"from": "alerts@example.com", "to": "ops@example.com"})
    dns.script("mail.rebind.test", "127.0.0.1", METADATA)  # rebound after the check
    drain(app)
    [row] = rows()
    assert row.status == "delivered"
    [message] = smtp_server.messages
    assert message["To"] == "ops@example.com"
