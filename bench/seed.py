"""Seeding at scale: users, organizations, channels, API keys, grants, logins and their codes.

Rows go in with PostgreSQL ``COPY`` (``executemany`` on SQLite), all sharing one
precomputed argon2id hash, so a million accounts seed in minutes. Emails are
``u<i>@bench.example`` so a load script can pick any account without a list;
the one secret per kind is derived from the index for the same reason.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import sqlalchemy as sa

from bench.bulk import BulkWriter
from idp.timeutil import utcnow

BENCH_PASSWORD = "bench-passphrase-2026"
EMAIL_DOMAIN = "bench.example"
GATEWAY_CLIENT_ID = "oc_bench_gateway"
# Registered on both hub clients; nothing listens there (the driver reads the redirect).
BENCH_REDIRECT_URI = "http://127.0.0.1:9/bench/callback"
# Secrets kept for the load scripts: enough to spread lookups over the whole index.
SAMPLES = 2_000
SCALES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}
_B32 = str.maketrans("abcdefghijklmnopqrstuvwxyz234567", "0123456789abcdefghjkmnpqrstvwxyz")


def parse_scale(text: str | int) -> int:
    """Turn ``10k``/``100k``/``1m`` (or a plain number) into a user count."""
    if isinstance(text, int):
        return text
    value = text.strip().lower()
    if value in SCALES:
        return SCALES[value]
    if value.endswith("k"):
        return int(value[:-1]) * 1_000
    if value.endswith("m"):
        return int(value[:-1]) * 1_000_000
    return int(value)


def fast_id(prefix: str) -> str:
    """A random id in the service's format (22 Crockford base32 characters), made in bulk."""
    raw = base64.b32encode(os.urandom(15)).decode().lower()[:22]
    return f"{prefix}_{raw.translate(_B32)}"


def user_email(index: int) -> str:
    """The email of seeded user ``index``."""
    return f"u{index}@{EMAIL_DOMAIN}"


@dataclass
class Plan:
    """How many of each thing one scale means (users drive everything else)."""

    users: int
    partners: int = 0
    clients: int = 0
    partner_users: int = 0
    channels_per_client: int = 2

    def __post_init__(self) -> None:
        self.partners = self.partners or max(1, self.users // 100)
        self.clients = self.clients or max(1, self.users // 10)
        self.partner_users = self.partner_users or max(1, self.users // 10)

    @property
    def client_users(self) -> int:
        """Users of the Client Hub (every user that is not a partner user)."""
        return self.users - self.partner_users

    @property
    def channels(self) -> int:
        """Channels across all clients."""
        return self.clients * self.channels_per_client


@dataclass
class Seeded:
    """What was written: row counts per table and the ids a load script needs."""

    plan: Plan
    counts: dict[str, int] = field(default_factory=dict)
    partner_ids: list[str] = field(default_factory=list)
    client_ids: list[str] = field(default_factory=list)
    channel_ids: list[str] = field(default_factory=list)
    grant_ids: list[str] = field(default_factory=list)
    family_ids: list[str] = field(default_factory=list)
    user_ids: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)


Seeder = Callable[[BulkWriter, Seeded], None]


def _organizations(writer: BulkWriter, seeded: Seeded) -> None:
    plan, now = seeded.plan, utcnow()
    seeded.partner_ids = [fast_id("pa") for _ in range(plan.partners)]
    seeded.client_ids = [fast_id("cl") for _ in range(plan.clients)]
    partners = (
        (pid, "partner", f"Partner {i}", None, now) for i, pid in enumerate(seeded.partner_ids)
    )
    clients = (
        (cid, "client", f"Client {i}", seeded.partner_ids[i % plan.partners], now)
        for i, cid in enumerate(seeded.client_ids)
    )
    columns = ["id", "kind", "name", "onboarding_partner_id", "created_at"]
    seeded.counts["organizations"] = writer.write("organizations", columns, partners)
    seeded.counts["organizations"] += writer.write("organizations", columns, clients)


def _users(writer: BulkWriter, seeded: Seeded) -> None:
    from idp.accounts.passwords import hash_password

    plan, now = seeded.plan, utcnow()
    password_hash = hash_password(BENCH_PASSWORD)
    seeded.user_ids = [fast_id("usr") for _ in range(plan.users)]

    def rows() -> Iterator[tuple]:
        for i, uid in enumerate(seeded.user_ids):
            email = user_email(i)
            hub = "partner" if i < plan.partner_users else "client"
            stamp = os.urandom(16).hex()
            yield (
                uid,
                email,
                email,
                True,
                f"User {i}",
                hub,
                "active",
                password_hash,
                now,
                stamp,
                now,
            )

    columns = [
        "id", "email", "email_normalized", "email_verified", "name", "hub", "status",
        "password_hash", "password_changed_at", "security_stamp", "created_at",
    ]  # fmt: skip
    seeded.counts["users"] = writer.write("users", columns, rows())


def _membership_of(seeded: Seeded, i: int) -> tuple[str, str, str]:
    """(hub, organization id, role) of seeded user ``i``."""
    plan = seeded.plan
    if i < plan.partner_users:
        return (
            "partner",
            seeded.partner_ids[i % plan.partners],
            ("owner" if i < plan.partners else "member"),
        )
    j = i - plan.partner_users
    return (
        "client",
        seeded.client_ids[j % plan.clients],
        ("owner" if j < plan.clients else "member"),
    )


def _memberships(writer: BulkWriter, seeded: Seeded) -> None:
    now = utcnow()
    rows = (
        (fast_id("mem"), uid, *_membership_of(seeded, i)[1:], now)
        for i, uid in enumerate(seeded.user_ids)
    )
    columns = ["id", "user_id", "organization_id", "role", "created_at"]
    seeded.counts["memberships"] = writer.write("memberships", columns, rows)


def _wabas_and_channels(writer: BulkWriter, seeded: Seeded) -> None:
    plan, now = seeded.plan, utcnow()
    waba_ids = [fast_id("wa") for _ in seeded.client_ids]
    wabas = (
        (wid, cid, f"WABA {i}", "verified", now)
        for i, (wid, cid) in enumerate(zip(waba_ids, seeded.client_ids, strict=True))
    )
    columns = ["id", "client_id", "name", "verification_state", "created_at"]
    seeded.counts["wabas"] = writer.write("wabas", columns, wabas)
    seeded.channel_ids = [fast_id("ch") for _ in range(plan.channels)]

    def channels() -> Iterator[tuple]:
        for n, chid in enumerate(seeded.channel_ids):
            i = n // plan.channels_per_client
            number = f"+1{2_000_000_000 + n}"
            cid, wid = seeded.client_ids[i], waba_ids[i]
            yield (chid, wid, cid, number, f"Line {n}", "live", "live", now, now)

    columns = [
        "id", "waba_id", "client_id", "phone_number", "display_name", "status",
        "account_mode", "created_at", "status_changed_at",
    ]  # fmt: skip
    seeded.counts["channels"] = writer.write("channels", columns, channels())


def _token_families(writer: BulkWriter, seeded: Seeded) -> None:
    """One live login (family) per user, acting in the user's organization."""
    plan, now = seeded.plan, utcnow()
    expires = now + timedelta(days=30)
    hub_client = {"partner": "partner-hub", "client": "client-hub"}
    seeded.family_ids = [fast_id("tf") for _ in seeded.user_ids]
    sampled = set(range(0, plan.users, max(1, plan.users // SAMPLES)))
    subjects = []
    signed_in, by_password = int(time.time()), json.dumps(["pwd"])

    def rows() -> Iterator[tuple]:
        for i, (uid, fid) in enumerate(zip(seeded.user_ids, seeded.family_ids, strict=True)):
            hub, org, role = _membership_of(seeded, i)
            if i in sampled:
                subjects.append(
                    {"user_id": uid, "family_id": fid, "hub": hub, "org": org, "role": role}
                )
            yield (fid, hub_client[hub], uid, org, now, expires, signed_in, by_password)

    columns = [
        "id", "client_id", "user_id", "organization_id", "created_at", "expires_at",
        "auth_time", "amr",
    ]  # fmt: skip
    seeded.counts["token_families"] = writer.write("token_families", columns, rows())
    seeded.extra["token_subjects"] = subjects


def _grants(writer: BulkWriter, seeded: Seeded) -> None:
    from policies.consent import DEFAULT_CONSENT_SCOPE

    plan, now = seeded.plan, utcnow()
    seeded.grant_ids = [fast_id("gr") for _ in seeded.client_ids]
    grants = (
        (gid, cid, seeded.partner_ids[i % plan.partners], DEFAULT_CONSENT_SCOPE, now, now)
        for i, (gid, cid) in enumerate(zip(seeded.grant_ids, seeded.client_ids, strict=True))
    )
    columns = ["id", "client_id", "partner_id", "scope", "created_at", "updated_at"]
    seeded.counts["consent_grants"] = writer.write("consent_grants", columns, grants)
    covered = (
        (seeded.grant_ids[n // plan.channels_per_client], chid, now)
        for n, chid in enumerate(seeded.channel_ids)
    )
    columns = ["grant_id", "channel_id", "created_at"]
    seeded.counts["consent_grant_channels"] = writer.write(
        "consent_grant_channels", columns, covered
    )


def _api_keys(writer: BulkWriter, seeded: Seeded) -> None:
    """Per channel: one live key (every other one made by the granted partner) and one revoked."""
    from idp.apikeys.keyformat import generate_key

    plan, now = seeded.plan, utcnow()
    rng = random.Random(len(seeded.channel_ids))  # noqa: S311 (sampling, not secrets)
    # Channel 0 is kept out of the samples: the revocation check replaces its key.
    picked = set(rng.sample(range(1, plan.channels), min(SAMPLES, plan.channels - 1)))
    samples: list[str] = []

    def rows() -> Iterator[tuple]:
        for n, chid in enumerate(seeded.channel_ids):
            i = n // plan.channels_per_client
            client = seeded.client_ids[i]
            by_partner = n % 2 == 1 and bool(seeded.grant_ids)
            partner = seeded.partner_ids[i % plan.partners] if by_partner else None
            grant = seeded.grant_ids[i] if by_partner else None
            creator = ("client", partner) if by_partner else ("user", "bench")
            for revoked in (now, None):
                key = generate_key()
                if revoked is None and n in picked:
                    samples.append(key.text)
                yield (
                    fast_id("key"), key.lookup_id, key.secret_hash, key.last_four, chid, client,
                    partner, grant, creator[0], creator[1], now, revoked,
                )  # fmt: skip

    columns = [
        "id", "lookup_id", "secret_hash", "last_four", "channel_id", "client_id", "partner_id",
        "grant_id", "created_by_type", "created_by_id", "created_at", "revoked_at",
    ]  # fmt: skip
    seeded.counts["channel_api_keys"] = writer.write("channel_api_keys", columns, rows())
    seeded.extra["api_keys"] = samples
    seeded.extra["reserved_channel"] = {
        "channel_id": seeded.channel_ids[0],
        "client_id": seeded.client_ids[0],
    }


def _oauth_clients(writer: BulkWriter, seeded: Seeded) -> None:
    """Both hub frontends, one API client per partner, and one platform gateway client."""
    from idp.oauth.clients import HUB_SCOPE
    from idp.oauth.models import HUB_CLIENT_IDS, sha256_hex
    from policies.roles import MACHINE_SCOPES

    plan, now = seeded.plan, utcnow()
    partner_scope = " ".join(sorted(str(p) for p in MACHINE_SCOPES["partner"]))
    gateway_scope = " ".join(sorted(str(p) for p in MACHINE_SCOPES["support"]))
    redirect = json.dumps([BENCH_REDIRECT_URI])
    sampled = range(0, plan.partners, max(1, plan.partners // SAMPLES))

    def rows() -> Iterator[tuple]:
        for hub in ("partner", "client"):
            name = f"{hub.title()} Hub"
            yield (HUB_CLIENT_IDS[hub], None, name, "hub", hub, None, redirect, HUB_SCOPE, now)
        secret = secret_for("client", -1)
        yield (GATEWAY_CLIENT_ID, sha256_hex(secret), "Bench gateway", "platform", "support",
               None, "[]", gateway_scope, now)  # fmt: skip
        for i, partner in enumerate(seeded.partner_ids):
            client_id, secret = f"oc_bench{i}", secret_for("client", i)
            yield (client_id, sha256_hex(secret), f"Partner {i} API", "partner", "partner",
                   partner, "[]", partner_scope, now)  # fmt: skip

    columns = [
        "client_id", "client_secret_hash", "name", "kind", "hub", "organization_id",
        "redirect_uris", "scope", "created_at", "post_logout_redirect_uris",
    ]  # fmt: skip
    seeded.counts["oauth_clients"] = writer.write("oauth_clients", columns, _with_logout(rows()))
    seeded.extra["partner_clients"] = [[f"oc_bench{i}", secret_for("client", i)] for i in sampled]
    seeded.extra["gateway_client"] = [GATEWAY_CLIENT_ID, secret_for("client", -1)]


def _with_logout(rows: Iterable[tuple]) -> Iterator[tuple]:
    """Append the (empty) post-logout redirect URIs column."""
    for row in rows:
        yield (*row, "[]")


def _refresh_tokens(writer: BulkWriter, seeded: Seeded) -> None:
    from idp.oauth.models import sha256_hex

    now = utcnow()
    rows = (
        (fast_id("rt"), sha256_hex(secret_for("refresh", i)), fid, "openid", now)
        for i, fid in enumerate(seeded.family_ids)
    )
    columns = ["id", "token_hash", "family_id", "scope", "created_at"]
    seeded.counts["oauth_refresh_tokens"] = writer.write("oauth_refresh_tokens", columns, rows)


def _authorization_codes(writer: BulkWriter, seeded: Seeded) -> None:
    """The used code (with its nonce) that opened each login, as a hub's code flow leaves it."""
    from idp.oauth.models import sha256_hex

    now = utcnow()
    hub_client = {"partner": "partner-hub", "client": "client-hub"}

    def rows() -> Iterator[tuple]:
        for i, (uid, fid) in enumerate(zip(seeded.user_ids, seeded.family_ids, strict=True)):
            hub, org, _ = _membership_of(seeded, i)
            challenge = sha256_hex(secret_for("verifier", i))[:43]
            yield (fast_id("ac"), sha256_hex(secret_for("code", i)), hub_client[hub], uid, org,
                   BENCH_REDIRECT_URI, "openid", secret_for("nonce", i), challenge, "S256",
                   int(now.timestamp()), now, now, now, fid)  # fmt: skip

    columns = [
        "id", "code_hash", "client_id", "user_id", "organization_id", "redirect_uri", "scope",
        "nonce", "code_challenge", "code_challenge_method", "auth_time", "created_at",
        "expires_at", "used_at", "family_id",
    ]  # fmt: skip
    seeded.counts["oauth_authorization_codes"] = writer.write(
        "oauth_authorization_codes", columns, rows()
    )


# Order matters: later seeders use the ids earlier ones made.
SEEDERS: list[tuple[str, Seeder]] = [
    ("organizations", _organizations),
    ("users", _users),
    ("memberships", _memberships),
    ("channels", _wabas_and_channels),
    ("token_families", _token_families),
    ("consent_grants", _grants),
    ("channel_api_keys", _api_keys),
    ("oauth_clients", _oauth_clients),
    ("oauth_refresh_tokens", _refresh_tokens),
    ("oauth_authorization_codes", _authorization_codes),
]


def seed(connection: sa.Connection, users: int, **plan_overrides) -> Seeded:
    """Write a whole data set of ``users`` accounts through ``connection`` (caller commits)."""
    seeded = Seeded(plan=Plan(users=users, **plan_overrides))
    writer = BulkWriter(connection)
    tables = set(sa.inspect(connection).get_table_names())
    for table, seeder in SEEDERS:
        if table in tables:
            seeder(writer, seeded)
    return seeded


def secret_for(kind: str, index: int) -> str:
    """The deterministic secret of seeded object ``index`` of ``kind`` (client, key, ...)."""
    digest = hashlib.sha256(f"idp-bench:{kind}:{index}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")
