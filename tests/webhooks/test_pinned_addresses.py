"""In production a delivery connects only to the addresses it checked, whatever DNS answers next.

No test here leaves the machine. 127.0.0.2 plays a public address (the check is told
so) and 127.0.0.1 the internal one; a fake resolver answers for made-up names and
passes every other lookup (the IP literals a connection resolves) to the real one.
"""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from idp.extensions import db
from idp.outbox import worker
from idp.webhooks import service, transport, urls
from idp.webhooks.models import WebhookAttempt, WebhookEndpoint
from idp.webhooks.service import emit_partner_event
from tests.factories import make_org, make_user
from tests.webhooks.conftest import partner_owner_actor

PUBLIC, INTERNAL = "127.0.0.2", "127.0.0.1"


@pytest.fixture
def public_stand_in(monkeypatch):
    """Let the check take 127.0.0.2 for a public address (it is loopback, so it stays local)."""
    judge = urls._is_internal_address
    monkeypatch.setattr(urls, "_is_internal_address", lambda host: host != PUBLIC and judge(host))


@pytest.fixture
def dns(monkeypatch):
    """A resolver: ``dns.answers[name]`` is the list of addresses for each lookup in turn."""

    class Fake:
        answers: dict[str, list[list[str]]] = {}
        lookups: dict[str, int] = {}

    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in Fake.answers:
            return real(host, port, *args, **kwargs)
        n = Fake.lookups.get(host, 0)
        Fake.lookups[host] = n + 1
        turns = Fake.answers[host]
        return [
            (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port or 0))
            for address in turns[min(n, len(turns) - 1)]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return Fake


def _listen(host: str, port: int = 0) -> socket.socket:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind((host, port))
    server.listen(8)
    server.settimeout(0.1)
    return server


@pytest.fixture
def listeners():
    """TCP listeners on one port of 127.0.0.1 and 127.0.0.2: ``(port, {address: [peers]})``."""
    for _ in range(20):
        internal = _listen(INTERNAL)
        port = internal.getsockname()[1]
        try:
            public = _listen(PUBLIC, port)
            break
        except OSError:  # the port is taken on 127.0.0.2: try another
            internal.close()
    else:
        pytest.skip("no port free on both 127.0.0.1 and 127.0.0.2")
    accepted: dict[str, list] = {INTERNAL: [], PUBLIC: []}
    stop = threading.Event()

    def serve(server, address):
        while not stop.is_set():
            try:
                conn, peer = server.accept()
            except OSError:
                continue
            accepted[address].append(peer)
            conn.close()

    threads = [
        threading.Thread(target=serve, args=(s, a), daemon=True)
        for s, a in ((internal, INTERNAL), (public, PUBLIC))
    ]
    for thread in threads:
        thread.start()
    yield port, accepted
    stop.set()
    for thread in threads:
        thread.join(timeout=2)
    internal.close()
    public.close()


def _deliver_once(app, monkeypatch, url: str) -> WebhookAttempt:
    """Accept ``url`` and deliver one event to it in production; the attempt."""
    monkeypatch.setitem(app.config, "IDP_ENV", "production")
    monkeypatch.setitem(app.config, "IDP_WEBHOOK_TIMEOUT", 2.0)
    partner = make_org("partner", "Mallory Messaging")
    owner = make_user("partner", partner, "owner")
    db.session.commit()
    service.set_endpoint(partner_owner_actor(partner, owner), partner.id, url)
    emit_partner_event(partner.id, "client_created", {"client_id": "cl_x"})
    db.session.commit()
    assert worker.run_once() == {"sent": 0, "pending": 1, "failed": 0}
    return db.session.scalar(sa.select(WebhookAttempt))


def test_a_dns_rebinding_never_makes_the_delivery_connect_inside(
    app, app_ctx, monkeypatch, public_stand_in, dns, listeners
):
    # Public for the URL's check and the delivery's, 127.0.0.1 for any lookup after them.
    port, accepted = listeners
    dns.answers["hooks.attacker.example"] = [[PUBLIC], [PUBLIC], [INTERNAL]]

    attempt = _deliver_once(app, monkeypatch, f"https://hooks.attacker.example:{port}/hook")

    assert accepted[INTERNAL] == [], "the delivery connected to an internal address"
    assert len(accepted[PUBLIC]) == 1  # the address the delivery checked
    assert dns.lookups["hooks.attacker.example"] == 2  # the URL's check, then the delivery's
    # The stand-in closes at once: a failed attempt, retried later.
    assert attempt.status_code is None and "could not complete the request" in attempt.error


def test_one_internal_answer_refuses_the_name_and_connects_nowhere(
    app, app_ctx, monkeypatch, public_stand_in, dns, listeners
):
    port, accepted = listeners
    dns.answers["hooks.attacker.example"] = [[PUBLIC], [PUBLIC, INTERNAL]]

    attempt = _deliver_once(app, monkeypatch, f"https://hooks.attacker.example:{port}/hook")

    assert accepted == {INTERNAL: [], PUBLIC: []}
    assert attempt.status_code is None and "internal address" in attempt.error


def _certificate_authority(tmp_path, name: str):
    """A CA file and a server context whose certificate (from that CA) names only ``name``."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test webhook CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return str(ca_file), context


@pytest.fixture
def tls_receiver(tmp_path):
    """An HTTPS receiver on 127.0.0.2 for ``hooks.partner.example``: what each request showed."""
    ca_file, context = _certificate_authority(tmp_path, "hooks.partner.example")
    seen: list[dict] = []
    sni: list[str | None] = []
    context.sni_callback = lambda _sock, name, _context: sni.append(name)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server naming)
            self.rfile.read(int(self.headers.get("content-length", 0)))
            seen.append({"host": self.headers["host"], "local": self.connection.getsockname()[0]})
            self.send_response(204)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer((PUBLIC, 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port, ca_file, seen, sni
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _post(url: str, ca_file: str) -> requests.Response:
    return transport.post(
        url, data=b"{}", headers={}, timeout=5.0, public_only=True, verify=ca_file
    )


def test_a_public_delivery_reaches_the_checked_address_by_its_name(
    public_stand_in, dns, tls_receiver
):
    port, ca_file, seen, sni = tls_receiver
    dns.answers["hooks.partner.example"] = [[PUBLIC]]

    response = _post(f"https://hooks.partner.example:{port}/hook", ca_file)

    # The socket went to the address the check saw; TLS and HTTP still name the host
    # (the certificate names only hooks.partner.example, not 127.0.0.2).
    assert response.status_code == 204
    assert seen == [{"host": f"hooks.partner.example:{port}", "local": PUBLIC}]
    assert sni == ["hooks.partner.example"]
    assert dns.lookups["hooks.partner.example"] == 1


def test_the_certificate_is_still_checked_against_the_host_name(public_stand_in, dns, tls_receiver):
    port, ca_file, seen, sni = tls_receiver
    dns.answers["hooks.other.example"] = [[PUBLIC]]

    with pytest.raises(requests.exceptions.SSLError):
        _post(f"https://hooks.other.example:{port}/hook", ca_file)

    assert seen == []
    assert sni == ["hooks.other.example"]


def test_an_internal_address_is_refused_before_any_connection(dns, tls_receiver):
    # Without the stand-in 127.0.0.2 is what it is: loopback.
    port, ca_file, seen, sni = tls_receiver
    dns.answers["hooks.partner.example"] = [[PUBLIC]]

    with pytest.raises(urls.InternalAddressError):
        _post(f"https://hooks.partner.example:{port}/hook", ca_file)

    assert seen == [] and sni == []


@pytest.mark.parametrize("production", [True, False])
@pytest.mark.parametrize(
    ("url", "refusal"),
    [
        ("http://hooks.partner.example:{port}/hook", "Use https"),
        ("https://user:pw@hooks.partner.example:{port}/hook", "credentials"),
        ("https://hooks.partner.example:{port}/hook#part", "fragment"),
    ],
)
def test_a_stored_url_registration_would_refuse_is_never_posted_to(
    app, app_ctx, monkeypatch, public_stand_in, dns, listeners, production, url, refusal
):
    # Accepted when it was set, then edited in the database (an import, older rules).
    port, accepted = listeners
    dns.answers["hooks.partner.example"] = [[PUBLIC]]
    if production:
        monkeypatch.setitem(app.config, "IDP_ENV", "production")
    partner = make_org("partner", "Imported Messaging")
    owner = make_user("partner", partner, "owner")
    db.session.commit()
    service.set_endpoint(
        partner_owner_actor(partner, owner), partner.id, f"https://hooks.partner.example:{port}/"
    )
    db.session.execute(sa.update(WebhookEndpoint).values(url=url.format(port=port)))
    emit_partner_event(partner.id, "client_created", {"client_id": "cl_x"})
    db.session.commit()

    assert worker.run_once() == {"sent": 0, "pending": 1, "failed": 0}

    assert accepted == {INTERNAL: [], PUBLIC: []}, "the delivery connected"
    attempt = db.session.scalar(sa.select(WebhookAttempt))
    assert attempt.status_code is None and refusal in attempt.error
