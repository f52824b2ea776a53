"""A loopback HTTP receiver for webhooks, and a partner with an endpoint on it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from idp.extensions import db
from idp.webhooks import service
from tests.factories import make_org, make_user


@dataclass
class Received:
    """One request the receiver got."""

    headers: dict
    body: str


@dataclass
class Receiver:
    """Records every POST; answers each with the next scripted status (then 204)."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    script: list[int | float] = field(default_factory=list)

    def answer(self, *statuses: int | float) -> None:
        """Queue answers: an int is an HTTP status, a float is seconds to stall before 204."""
        self.script.extend(statuses)

    def bodies(self) -> list[str]:
        """The bodies received so far."""
        return [r.body for r in self.requests]


@pytest.fixture
def receiver():
    """A webhook receiver on a loopback ephemeral port, in a thread."""
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server naming)
            body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
            step = state.script.pop(0) if state.script else 204
            if isinstance(step, float):
                time.sleep(step)
                step = 204
            state.requests.append(Received(dict(self.headers.items()), body))
            self.send_response(step)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_port}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@dataclass
class PartnerWithHook:
    """A partner, its owner, and the signing secret of its endpoint."""

    partner: object
    owner: object
    secret: str


def partner_owner_actor(partner, owner):
    """The policy actor of a partner owner (for calling services directly)."""
    from policies.actor import Actor

    return Actor(
        hub="partner",
        organization_id=partner.id,
        roles=frozenset({"owner"}),
        user_id=owner.id,
    )


@pytest.fixture
def hooked_partner(app_ctx, receiver):
    """A partner whose webhook URL points at the loopback receiver."""
    partner = make_org("partner", "Acme Messaging")
    owner = make_user("partner", partner, "owner")
    db.session.commit()
    _, secret = service.set_endpoint(partner_owner_actor(partner, owner), partner.id, receiver.url)
    return PartnerWithHook(partner, owner, secret)
