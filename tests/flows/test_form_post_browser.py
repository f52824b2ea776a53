"""Real chromium signs in with ``response_mode=form_post``: the code arrives in a POST body.

The client is a tiny HTTP server of its own (another origin), which records
what the browser posts to its redirect URI.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from idp.extensions import db
from idp.keys.service import verify_jwt
from idp.oauth.clients import register_hub_client
from tests.factories import PASSWORD, make_org, make_user
from tests.flows.live_client import authorize_url, exchange
from tests.oauth.conftest import pkce_pair

pytestmark = pytest.mark.browser


class _Receiver(BaseHTTPRequestHandler):
    """The client's redirect URI: keeps every request it is sent."""

    def do_POST(self):  # noqa: N802  (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        self.server.received.append(
            {
                "method": "POST",
                "path": self.path,
                "headers": dict(self.headers),
                "form": {k: v[0] for k, v in parse_qs(body).items()},
            }
        )
        self._answer()

    def do_GET(self):  # noqa: N802
        self.server.received.append({"method": "GET", "path": self.path})
        self._answer()

    def _answer(self):
        page = b"<!doctype html><title>Client</title><p id=received>received</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def client_app(app, live_server, receiver):
    """The Client Hub frontend, whose redirect URI is the receiver; a bakery owner."""
    redirect_uri = f"http://127.0.0.1:{receiver.server_port}/callback"
    with app.app_context():
        register_hub_client("client", [redirect_uri])
        make_user("client", make_org("client", "Blue Bakery"), "owner", email="bea@bakery.example")
        db.session.commit()
    return redirect_uri


def _sign_in(page, url: str, csp_reports: list[str]) -> None:
    page.on(
        "console",
        lambda message: (
            csp_reports.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.goto(url)
    page.fill("input[name=email]", "bea@bakery.example")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def _posted(receiver) -> dict:
    """The one request the browser sent to the redirect URI: a POST to it exactly."""
    # The browser also asks the client's host for its favicon.
    sent = [r for r in receiver.received if r["path"].startswith("/callback")]
    assert len(sent) == 1, sent
    request = sent[0]
    assert request["method"] == "POST"
    assert request["path"] == "/callback"  # nothing in the URL: no query, no code
    return request


def test_the_code_is_posted_to_the_client_and_exchanged(
    app, live_server, receiver, client_app, page
):
    verifier, challenge = pkce_pair()
    csp_reports: list[str] = []
    _sign_in(
        page,
        authorize_url(
            live_server, "client-hub", challenge, "st-post", client_app, response_mode="form_post"
        ),
        csp_reports,
    )
    page.wait_for_url(client_app)
    page.wait_for_selector("#received")

    request = _posted(receiver)
    form = request["form"]
    assert set(form) == {"code", "state", "iss"}
    assert (form["state"], form["iss"]) == ("st-post", live_server.url)
    # The client's page learns no address of the identity provider's carrying the code.
    assert "code=" not in request["headers"].get("Referer", "")
    assert csp_reports == []
    tokens = exchange(live_server, "client-hub", form["code"], verifier, client_app)
    with app.app_context():
        claims = verify_jwt(tokens["access_token"], typ="at+jwt")
    assert claims["hub"] == "client"


def test_without_javascript_the_person_sends_the_form_on(
    app, live_server, receiver, client_app, _browser
):
    context = _browser.new_context(java_script_enabled=False)
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        verifier, challenge = pkce_pair()
        _sign_in(
            page,
            authorize_url(
                live_server,
                "client-hub",
                challenge,
                "st-nojs",
                client_app,
                response_mode="form_post",
            ),
            [],
        )
        page.wait_for_selector("button:has-text('Continue')")
        assert not [r for r in receiver.received if r["path"].startswith("/callback")]
        page.click("button:has-text('Continue')")
        page.wait_for_url(client_app)
        form = _posted(receiver)["form"]
        assert form["state"] == "st-nojs"
        exchange(live_server, "client-hub", form["code"], verifier, client_app)
    finally:
        context.close()
