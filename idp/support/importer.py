"""``idp import-accounts``: accounts from older systems, one JSON object per line.

Every line ends in exactly one outcome, reported with its line number:

* ``imported``: a new account (a partner or client organization is created by
  name when the hub has none of that name);
* ``joined``: a partner address that already has a partner account (active,
  or held for a conflict) gets a membership in one more partner (the one
  allowed reuse of an address);
* ``conflict``: the address is used by an account of another hub (or an earlier
  line), so the account is created held in status ``email_conflict`` and queued
  for support;
* ``unchanged``: the line was imported by an earlier run (idempotency);
* ``rejected``: the line is not a valid account, with the reason
  (``idp.support.legacy_lines``).

Lines are committed in batches: a run that stops leaves only whole batches
behind, and running the same file again completes it.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy.exc import IntegrityError, StatementError

from idp.accounts.models import User
from idp.audit.service import record_event
from idp.extensions import db
from idp.ids import PREFIXES, new_id
from idp.orgs.models import Membership, Organization
from idp.support.legacy_lines import Rejected, parse_line
from idp.support.models import EmailConflict, ImportedAccount
from idp.support.service import held_address

IMPORT_HUBS = ("partner", "client")
DEFAULT_BATCH_SIZE = 500
ACTOR = "import-accounts"


@dataclass
class LineOutcome:
    """What happened to one input line."""

    line: int
    outcome: str
    email: str | None = None
    user_id: str | None = None
    detail: str = ""


@dataclass
class ImportReport:
    """Every input line with its outcome, and the counts per outcome."""

    hub: str
    lines: list[LineOutcome] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        """How many lines ended with ``outcome``."""
        return sum(1 for line in self.lines if line.outcome == outcome)

    def summary(self) -> dict:
        """The counts per outcome and the total number of lines read."""
        outcomes = ("imported", "joined", "conflict", "unchanged", "rejected")
        return {"lines": len(self.lines)} | {o: self.count(o) for o in outcomes}

    def as_dict(self) -> dict:
        """The report as JSON-ready data."""
        return {
            "hub": self.hub,
            "summary": self.summary(),
            "lines": [vars(line) for line in self.lines],
        }


class ImportStopped(RuntimeError):
    """The run stopped at a line; every line before ``committed`` is safely in the database."""

    def __init__(self, line: int, committed: int, cause: Exception):
        # A database error's text carries the statement's parameters (password
        # hashes among them): say only what the driver said.
        said = cause.orig if isinstance(cause, StatementError) and cause.orig else cause
        super().__init__(
            f"stopped at line {line} ({type(cause).__name__}: {said}); the first {committed} "
            "lines were committed in whole batches: run the same command again to complete"
        )
        self.line = line
        self.committed = committed


def organization_name_key(name: str) -> str:
    """The comparison form of an organization name: the rule of ``normalize_email``.

    NFKC, case-folded, NFKC again: "Café" typed composed or decomposed, and
    "ÄRZTE" or "ärzte", are one name. Computed in Python, because SQL ``lower()``
    changes only ASCII letters on SQLite (and on PostgreSQL under the C locale).
    """
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def source_key(hub: str, email_normalized: str, organization: str) -> str:
    """The identity of a legacy account: hub, address and organization name."""
    return _digest(hub, email_normalized, organization_name_key(organization))


def _earlier_source_key(hub: str, email_normalized: str, organization: str) -> str:
    """The key earlier releases stored: the name ``lower()``-ed, not normalized.

    The two keys differ only for some names outside ASCII; stored rows keep their
    key, so a file imported before still reruns as ``unchanged``.
    """
    return _digest(hub, email_normalized, organization.lower())


class OrganizationIndex:
    """The organizations of one hub by their name's comparison form, oldest first.

    Read once per run, rather than queried per line: an import of 100,000 lines
    compares names in Python at the cost of one read. An organization another
    process creates during the run is not seen by it (names are not unique).
    """

    def __init__(self, hub: str):
        self.hub = hub
        self._ids: dict[str, str] | None = None

    def _load(self) -> dict[str, str]:
        if self._ids is None:
            rows = db.session.execute(
                db.select(Organization.id, Organization.name)
                .where(Organization.kind == self.hub)
                .order_by(Organization.created_at, Organization.id)
            )
            self._ids = {}
            for org_id, name in rows:
                self._ids.setdefault(organization_name_key(name), org_id)
        return self._ids

    def find_or_create(self, name: str) -> Organization:
        """The organization of that name (case-insensitive), created when there is none."""
        ids = self._load()
        key = organization_name_key(name)
        found = db.session.get(Organization, ids[key]) if key in ids else None
        if found is None:
            found = _create_organization(self.hub, name)
            ids[key] = found.id
        return found


def _create_organization(hub: str, name: str) -> Organization:
    created = Organization.create(hub, name)
    db.session.add(created)
    db.session.flush()
    record_event(
        "organization.imported",
        actor_type="system",
        actor_id=ACTOR,
        target_type="organization",
        target_id=created.id,
        organization_id=created.id,
        after={"kind": hub, "name": name},
    )
    return created


def _new_user(hub: str, data: dict, address, *, held: bool) -> User:
    user_id = new_id(PREFIXES["user"])
    return User(
        id=user_id,
        email=address.display,
        email_normalized=held_address(user_id) if held else address.normalized,
        email_verified=False,
        name=data["name"],
        hub=hub,
        status="email_conflict" if held else "active",
        password_hash=data["password_hash"],
    )


def _holder(normalized: str) -> User | None:
    return db.session.scalar(db.select(User).where(User.email_normalized == normalized))


def _create_active(hub: str, data: dict, address, org: Organization) -> User | None:
    """Create the account with its address, or None when the address was taken meanwhile."""
    try:
        with db.session.begin_nested():
            user = _new_user(hub, data, address, held=False)
            db.session.add(user)
            db.session.add(Membership.create(user, org, data["role"]))
            db.session.flush()
    except IntegrityError:
        return None
    return user


def import_line(
    hub: str, number: int, text: str | bytes, organizations: OrganizationIndex | None = None
) -> LineOutcome:
    """Import one line (text, or bytes read from a file) in the caller's transaction.

    ``organizations`` is the run's index of the hub's organizations (read here when absent).
    """
    try:
        data, address = parse_line(hub, text)
    except Rejected as exc:
        return LineOutcome(number, "rejected", detail=exc.reason)
    key = source_key(hub, address.normalized, data["organization"])
    earlier = _earlier_source_key(hub, address.normalized, data["organization"])
    done = db.session.scalar(
        db.select(ImportedAccount).where(ImportedAccount.source_key.in_({key, earlier})).limit(1)
    )
    if done is not None:
        return LineOutcome(
            number, "unchanged", address.display, done.user_id, "already imported (same account)"
        )
    org = (organizations or OrganizationIndex(hub)).find_or_create(data["organization"])
    holder = _holder(address.normalized)
    user = _create_active(hub, data, address, org) if holder is None else None
    if user is not None:
        outcome = LineOutcome(number, "imported", address.display, user.id)
    else:
        holder = holder or _holder(address.normalized)
        outcome = _join_or_hold(hub, number, data, address, org, holder)
    db.session.add(
        ImportedAccount(
            id=new_id(PREFIXES["import_record"]),
            source_key=key,
            hub=hub,
            email_normalized=address.normalized,
            organization_id=org.id,
            user_id=outcome.user_id,
            outcome=outcome.outcome,
        )
    )
    record_event(
        f"account.{outcome.outcome}" if outcome.outcome != "conflict" else "account.held",
        actor_type="system",
        actor_id=ACTOR,
        target_type="user",
        target_id=outcome.user_id,
        organization_id=org.id,
        after={"hub": hub, "organization": org.name, "role": data["role"], "line": number},
    )
    db.session.flush()
    return outcome


def _held_partner(normalized: str) -> User | None:
    """The partner account held earlier because it claims ``normalized`` (the oldest)."""
    return db.session.scalar(
        db.select(User)
        .join(EmailConflict, EmailConflict.held_user_id == User.id)
        .where(EmailConflict.email_normalized == normalized, User.hub == "partner")
        .order_by(EmailConflict.created_at, EmailConflict.id)
        .limit(1)
    )


def _join_or_hold(hub, number, data, address, org, holder: User) -> LineOutcome:
    if hub == "partner":
        # One partner person listed in several partners is one account with several
        # memberships, also when that account is held because another hub uses
        # the address: the memberships stay with it when the conflict is resolved.
        active = holder.hub == "partner" and holder.status == "active"
        member = holder if active else _held_partner(address.normalized)
        if member is not None:
            if not any(m.organization_id == org.id for m in member.memberships):
                db.session.add(Membership.create(member, org, data["role"]))
            detail = f"member of {org.name} too"
            if member is not holder:
                detail += f" (the account held for support, {member.id})"
            return LineOutcome(number, "joined", address.display, member.id, detail)
    user = _new_user(hub, data, address, held=True)
    db.session.add(user)
    db.session.add(Membership.create(user, org, data["role"]))
    db.session.add(
        EmailConflict(
            id=new_id(PREFIXES["email_conflict"]),
            held_user_id=user.id,
            holder_user_id=holder.id,
            email=address.display,
            email_normalized=address.normalized,
            source=f"import-accounts --hub {hub}, line {number}",
        )
    )
    db.session.flush()
    return LineOutcome(
        number,
        "conflict",
        address.display,
        user.id,
        f"address already used by a {holder.hub} account ({holder.id}); held for support",
    )


def _numbered(lines: Iterable[str | bytes]) -> Iterable[tuple[int, str | bytes]]:
    for number, line in enumerate(lines, start=1):
        if isinstance(line, bytes):
            # Bytes are decoded line by line, so one badly encoded line is a
            # rejected line rather than an error that stops the whole run.
            if number == 1:
                line = line.removeprefix(b"\xef\xbb\xbf")
            yield number, line.rstrip(b"\r\n")
        else:
            yield number, line.rstrip("\r\n")


def import_accounts(
    hub: str, lines: Iterable[str | bytes], *, batch_size: int = DEFAULT_BATCH_SIZE
) -> ImportReport:
    """Import every line, committing after each batch; the report covers every line.

    An error (a lost database, say) rolls back the current batch only and
    raises ``ImportStopped``; what was committed before stays, and a rerun
    reports those lines as ``unchanged`` and imports the rest. A killed process
    loses only its open transaction, which is the same outcome.
    """
    if hub not in IMPORT_HUBS:
        raise ValueError(f"accounts can be imported into {' or '.join(IMPORT_HUBS)}, not {hub}")
    report = ImportReport(hub)
    organizations = OrganizationIndex(hub)
    batch: list[LineOutcome] = []
    number = 0
    try:
        for number, text in _numbered(lines):
            batch.append(import_line(hub, number, text, organizations))
            if len(batch) >= batch_size:
                db.session.commit()
                report.lines += batch
                batch = []
        report.lines += batch
        record_event(
            "accounts.import_completed",
            actor_type="system",
            actor_id=ACTOR,
            after=report.summary() | {"hub": hub},
        )
        db.session.commit()
    except Exception as exc:
        db.session.rollback()
        raise ImportStopped(number, len(report.lines), exc) from exc
    except BaseException:
        db.session.rollback()
        raise
    return report
