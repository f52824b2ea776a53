"""``idp import-accounts``: report, conflicts, idempotency, and a run that stops midway."""

from __future__ import annotations

import hashlib
import json
import unicodedata

import bcrypt
import pytest
from argon2 import PasswordHasher, Type

from idp.accounts.models import User
from idp.accounts.passwords import verify_password
from idp.audit.models import AuditEvent
from idp.cli import main
from idp.extensions import db
from idp.orgs.models import Membership, Organization
from idp.support import importer
from idp.support.models import EmailConflict, ImportedAccount
from tests.factories import make_org, make_user

BCRYPT = bcrypt.hashpw(b"legacy-password-1", bcrypt.gensalt(4)).decode()
ARGON2I = PasswordHasher(type=Type.I, time_cost=1, memory_cost=1024).hash("legacy-password-2")


def line(email, name="Legacy Person", organization="Legacy Bakery", role="owner", **extra):
    return json.dumps(
        {"email": email, "name": name, "organization": organization, "role": role} | extra
    )


@pytest.fixture
def run_cli(app):
    runner = app.test_cli_runner()

    def run(tmp_path, hub, lines, *args):
        path = tmp_path / f"{hub}.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        result = runner.invoke(main, args=["import-accounts", "--hub", hub, *args, str(path)])
        assert result.exit_code == 0, result.output
        return result.output

    return run


def users(**where):
    return list(db.session.scalars(db.select(User).filter_by(**where).order_by(User.created_at)))


def test_the_report_accounts_for_every_line(app_ctx, run_cli, tmp_path):
    make_user("partner", email="taken@shared.example")
    db.session.commit()
    lines = [
        line("ann@bakery.example", password_hash=BCRYPT),  # 1 imported
        line("BOB@bakery.example", role="member", password_hash=ARGON2I),  # 2 imported
        "{not json",  # 3 rejected
        line("not-an-address"),  # 4 rejected
        line("carl@bakery.example", role="admin"),  # 5 rejected: not a client role
        line("Taken@Shared.example", organization="Other Shop"),  # 6 conflict: partner account
        line("ann@BAKERY.example", organization="Second Shop"),  # 7 conflict: line 1
        "",  # 8 rejected
        line("dan@bakery.example", colour="blue"),  # 9 rejected: unknown field
        line("eve@bakery.example", password_hash="md5$abc"),  # 10 rejected
        "[1, 2]",  # 11 rejected
    ]

    output = run_cli(tmp_path, "client", lines, "--json")

    report = json.loads(output)
    assert report["summary"] == {
        "lines": 11,
        "imported": 2,
        "joined": 0,
        "conflict": 2,
        "unchanged": 0,
        "rejected": 7,
    }
    by_line = {entry["line"]: entry for entry in report["lines"]}
    assert sorted(by_line) == list(range(1, 12))
    assert by_line[3]["detail"].startswith("not valid JSON")
    assert by_line[4]["detail"].startswith("invalid email address")
    assert "unknown role 'admin'" in by_line[5]["detail"]
    assert "partner account" in by_line[6]["detail"]
    assert by_line[8]["detail"] == "empty line"
    assert "colour" in by_line[9]["detail"]
    assert "bcrypt nor an argon2" in by_line[10]["detail"]
    assert by_line[11]["detail"] == "not a JSON object"

    ann = db.session.scalar(db.select(User).where(User.email_normalized == "ann@bakery.example"))
    assert ann.status == "active" and ann.hub == "client"
    assert verify_password(ann.password_hash, "legacy-password-1")
    bob = db.session.scalar(db.select(User).where(User.email_normalized == "bob@bakery.example"))
    assert verify_password(bob.password_hash, "legacy-password-2")
    assert [m.role for m in bob.memberships] == ["member"]
    assert bob.memberships[0].organization.name == "Legacy Bakery"
    held = users(status="email_conflict")
    assert sorted(u.email for u in held) == ["Taken@shared.example", "ann@bakery.example"]
    assert all(u.email_normalized.endswith("@conflict.invalid") for u in held)
    conflicts = db.session.scalars(db.select(EmailConflict)).all()
    assert sorted(c.email_normalized for c in conflicts) == [
        "ann@bakery.example",
        "taken@shared.example",
    ]


def test_text_report_names_each_problem_line(app_ctx, run_cli, tmp_path):
    output = run_cli(tmp_path, "partner", [line("a@p.example"), "nope"])
    assert "2 lines: 1 imported, 0 joined, 0 conflicts, 0 unchanged, 1 rejected" in output
    assert "line 2: rejected: not valid JSON" in output


def test_a_second_run_changes_nothing(app_ctx, run_cli, tmp_path):
    lines = [line(f"p{n}@partner.example", organization=f"Partner {n % 2}") for n in range(5)]
    lines.append(line("P0@partner.example", organization="partner 1", role="member"))
    first = json.loads(run_cli(tmp_path, "partner", lines, "--json"))
    assert first["summary"]["imported"] == 5 and first["summary"]["joined"] == 1
    snapshot = {
        "users": db.session.scalar(db.select(db.func.count()).select_from(User)),
        "memberships": db.session.scalar(db.select(db.func.count()).select_from(Membership)),
        "orgs": db.session.scalar(db.select(db.func.count()).select_from(Organization)),
        "imports": db.session.scalar(db.select(db.func.count()).select_from(ImportedAccount)),
    }

    second = json.loads(run_cli(tmp_path, "partner", lines, "--json"))

    assert second["summary"] == {
        "lines": 6,
        "imported": 0,
        "joined": 0,
        "conflict": 0,
        "unchanged": 6,
        "rejected": 0,
    }
    db.session.expire_all()
    assert snapshot == {
        "users": db.session.scalar(db.select(db.func.count()).select_from(User)),
        "memberships": db.session.scalar(db.select(db.func.count()).select_from(Membership)),
        "orgs": db.session.scalar(db.select(db.func.count()).select_from(Organization)),
        "imports": db.session.scalar(db.select(db.func.count()).select_from(ImportedAccount)),
    }


def test_a_partner_address_joins_an_existing_partner_account(app_ctx, run_cli, tmp_path):
    acme = make_org("partner", "Acme")
    person = make_user("partner", acme, "owner", email="pat@partners.example")
    db.session.commit()

    report = json.loads(
        run_cli(
            tmp_path, "partner", [line("pat@partners.example", organization="Globex")], "--json"
        )
    )

    assert report["summary"]["joined"] == 1
    db.session.expire_all()
    person = db.session.get(User, person.id)
    assert sorted(m.organization.name for m in person.memberships) == ["Acme", "Globex"]
    assert users(status="email_conflict") == []


def _partner_memberships() -> list[tuple[str, list[str]]]:
    accounts = users(hub="partner")
    return [(u.status, sorted(m.organization.name for m in u.memberships)) for u in accounts]


def test_a_partner_person_in_two_partners_is_one_held_account_when_another_hub_has_the_address(
    app_ctx,
):
    make_user("client", make_org("client", "Bakery"), "owner", email="pat@legacy.example")
    db.session.commit()
    lines = [
        line("pat@legacy.example", organization="Acme"),
        line("pat@legacy.example", organization="Globex", role="member"),
    ]

    report = importer.import_accounts("partner", lines)

    assert [entry.outcome for entry in report.lines] == ["conflict", "joined"]
    assert report.lines[1].user_id == report.lines[0].user_id
    assert _partner_memberships() == [("email_conflict", ["Acme", "Globex"])]
    assert db.session.scalar(db.select(db.func.count()).select_from(EmailConflict)) == 1
    rerun = importer.import_accounts("partner", lines)
    assert [entry.outcome for entry in rerun.lines] == ["unchanged", "unchanged"]


def test_the_partner_file_first_gives_the_same_single_account(app_ctx):
    importer.import_accounts(
        "partner",
        [
            line("pat@legacy.example", organization="Acme"),
            line("pat@legacy.example", organization="Globex", role="member"),
        ],
    )
    importer.import_accounts("client", [line("pat@legacy.example", organization="Bakery")])

    assert _partner_memberships() == [("active", ["Acme", "Globex"])]
    assert db.session.scalar(db.select(db.func.count()).select_from(EmailConflict)) == 1


def test_an_existing_organization_is_reused_by_name(app_ctx, run_cli, tmp_path):
    bakery = make_org("client", "Blue Bakery")
    db.session.commit()
    run_cli(tmp_path, "client", [line("new@bakery.example", organization="blue bakery")])
    user = db.session.scalar(db.select(User).where(User.email_normalized == "new@bakery.example"))
    assert user.memberships[0].organization_id == bakery.id


def test_an_organization_named_outside_ascii_is_found_again_in_any_case(app_ctx):
    praxis = make_org("client", "Ärzte am Markt")
    db.session.commit()
    lines = [
        line("ann@praxis.example", organization="Ärzte am Markt"),
        line("bob@praxis.example", organization="ÄRZTE AM MARKT", role="member"),
        line("cem@praxis.example", organization="ärzte am markt", role="member"),
        line("dan@strasse.example", organization="Große Straße"),
        line("eva@strasse.example", organization="GROSSE STRASSE", role="member"),
    ]

    report = importer.import_accounts("client", lines)

    assert {entry.outcome for entry in report.lines} == {"imported"}
    names = db.session.scalars(db.select(Organization.name).order_by(Organization.name)).all()
    assert names == ["Große Straße", "Ärzte am Markt"]
    for account in users(hub="client")[:3]:
        assert account.memberships[0].organization_id == praxis.id


def test_an_organization_name_decomposed_by_another_export_is_the_same_line(app_ctx):
    composed = unicodedata.normalize("NFC", "Café Zoé")
    decomposed = unicodedata.normalize("NFD", "Café Zoé")
    assert composed != decomposed

    first = importer.import_accounts("client", [line("zoe@cafe.example", organization=composed)])
    second = importer.import_accounts("client", [line("zoe@cafe.example", organization=decomposed)])

    assert [entry.outcome for entry in first.lines] == ["imported"]
    assert [entry.outcome for entry in second.lines] == ["unchanged"]
    assert len(users()) == 1
    assert db.session.scalar(db.select(db.func.count()).select_from(Organization)) == 1


def test_a_line_imported_under_the_earlier_key_reruns_unchanged(app_ctx):
    lines = [line("dan@strasse.example", organization="Große Straße")]
    importer.import_accounts("client", lines)
    # Earlier releases keyed the line on the name lower()-ed ("große straße"),
    # which the normalized form ("grosse strasse") is not.
    row = db.session.scalar(db.select(ImportedAccount))
    earlier = "\n".join(("client", "dan@strasse.example", "große straße"))
    row.source_key = hashlib.sha256(earlier.encode()).hexdigest()
    db.session.commit()

    report = importer.import_accounts("client", lines)

    assert [entry.outcome for entry in report.lines] == ["unchanged"]
    assert db.session.scalar(db.select(db.func.count()).select_from(ImportedAccount)) == 1


def test_a_run_that_stops_midway_leaves_whole_batches_and_a_rerun_completes(
    app_ctx, run_cli, tmp_path, monkeypatch
):
    lines = [line(f"user{n}@legacy.example", organization=f"Shop {n}") for n in range(1, 8)]
    real_import_line = importer.import_line

    def dies_on_line_6(hub, number, text, *index):
        if number == 6:
            raise ConnectionError("database lost")
        return real_import_line(hub, number, text, *index)

    monkeypatch.setattr(importer, "import_line", dies_on_line_6)
    path = tmp_path / "legacy.jsonl"
    path.write_text("\n".join(lines) + "\n")
    args = ["import-accounts", "--hub", "client", "--batch-size", "2", str(path)]
    result = app_ctx.test_cli_runner().invoke(main, args=args)

    assert result.exit_code == 1
    assert "stopped at line 6 (ConnectionError: database lost)" in result.output
    assert "the first 4 lines were committed" in result.output

    # lines 1-4 were two whole batches; line 5 was in the batch that died with line 6
    db.session.expire_all()
    imported = sorted(u.email for u in users(hub="client"))
    assert imported == [f"user{n}@legacy.example" for n in range(1, 5)]
    assert db.session.scalar(db.select(db.func.count()).select_from(ImportedAccount)) == 4
    names = db.session.scalars(db.select(Organization.name)).all()
    assert "Shop 5" not in names

    monkeypatch.setattr(importer, "import_line", real_import_line)
    report = json.loads(run_cli(tmp_path, "client", lines, "--json", "--batch-size", "2"))

    assert report["summary"]["unchanged"] == 4
    assert report["summary"]["imported"] == 3
    assert len(users(hub="client")) == 7


def test_imports_are_audited(app_ctx, run_cli, tmp_path):
    make_user("client", email="dup@x.example")
    db.session.commit()
    run_cli(tmp_path, "client", [line("fresh@x.example"), line("dup@x.example")])
    actions = db.session.scalars(
        db.select(AuditEvent.action).order_by(AuditEvent.occurred_at)
    ).all()
    assert "account.imported" in actions
    assert "account.held" in actions
    assert actions[-1] == "accounts.import_completed"


def test_import_into_the_support_hub_is_refused(app, tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(line("a@b.example", role="agent") + "\n")
    result = app.test_cli_runner().invoke(
        main, args=["import-accounts", "--hub", "support", str(path)]
    )
    assert result.exit_code != 0
    assert "Invalid value for '--hub'" in result.output


def test_an_address_taken_during_the_import_becomes_a_conflict(app_ctx, monkeypatch):
    # a sign-up commits the address between the importer's lookup and its insert
    taken = make_user("client", email="racy@x.example")
    db.session.commit()
    real_holder = importer._holder
    lookups = []

    def not_yet_seen(normalized):
        lookups.append(normalized)
        return None if len(lookups) == 1 else real_holder(normalized)

    monkeypatch.setattr(importer, "_holder", not_yet_seen)

    report = importer.import_accounts("partner", [line("racy@x.example"), line("ok@x.example")])

    assert [entry.outcome for entry in report.lines] == ["conflict", "imported"]
    conflict = db.session.scalar(db.select(EmailConflict))
    assert conflict.holder_user_id == taken.id


def _legacy_hashes(password: str) -> dict[str, str]:
    bcrypt_hash = bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()
    fast = {"time_cost": 1, "memory_cost": 1024}
    return {
        "bcrypt 2a": "$2a$" + bcrypt_hash[4:],
        "bcrypt 2b": bcrypt_hash,
        "bcrypt 2y": "$2y$" + bcrypt_hash[4:],
        "argon2i": PasswordHasher(type=Type.I, **fast).hash(password),
        "argon2d": PasswordHasher(type=Type.D, **fast).hash(password),
        "argon2id": PasswordHasher(type=Type.ID, **fast).hash(password),
    }


def test_every_legacy_hash_form_is_imported_and_verifies(app_ctx):
    hashes = _legacy_hashes("legacy-password-3")
    lines = [line(f"{n}@hashes.example", password_hash=h) for n, h in enumerate(hashes.values())]

    report = importer.import_accounts("client", lines)

    assert report.summary()["imported"] == len(hashes)
    for n, form in enumerate(hashes):
        user = db.session.scalar(
            db.select(User).where(User.email_normalized == f"{n}@hashes.example")
        )
        assert verify_password(user.password_hash, "legacy-password-3"), form
        assert not verify_password(user.password_hash, "wrong-password-3"), form


def test_a_hash_that_cannot_or_must_not_be_verified_is_rejected(app_ctx):
    good_bcrypt = bcrypt.hashpw(b"legacy-password-4", bcrypt.gensalt(4)).decode()
    good_argon2 = PasswordHasher(type=Type.ID, time_cost=1, memory_cost=1024).hash("x")
    salt, digest = "c2FsdHNhbHRzYWx0c2FsdA", "aGFzaGhhc2hoYXNoaGFzaA"
    broken = {
        "bcrypt cost 03": ("$2b$03$" + good_bcrypt[7:], "bcrypt cost 3 is outside 4..14"),
        "bcrypt cost 15": ("$2b$15$" + good_bcrypt[7:], "bcrypt cost 15 is outside 4..14"),
        "bcrypt cost 99": ("$2b$99$" + good_bcrypt[7:], "bcrypt cost 99 is outside 4..14"),
        "argon2 v=7": (good_argon2.replace("v=19", "v=7"), "argon2 version 7 is unknown"),
        "argon2 4-byte salt": (
            f"$argon2id$v=19$m=1024,t=1,p=1$c2FsdA${digest}",
            "argon2 salt of 4 bytes is too short",
        ),
        "argon2 4 GiB": (
            f"$argon2id$v=19$m=4194304,t=1,p=1${salt}${digest}",
            "argon2 memory cost m=4194304 KiB is outside 8..262144",
        ),
        "argon2 t=11": (
            f"$argon2id$v=19$m=1024,t=11,p=1${salt}${digest}",
            "argon2 time cost t=11 is outside 1..10",
        ),
        "argon2 256 MiB x 5": (
            f"$argon2id$v=19$m=262144,t=5,p=1${salt}${digest}",
            "argon2 memory x time cost is above 1048576 KiB",
        ),
        "argon2 p=17": (
            f"$argon2id$v=19$m=1024,t=1,p=17${salt}${digest}",
            "argon2 parallelism p=17 is outside 1..16",
        ),
        "argon2 salt not base64": (
            f"$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzY${digest}",
            "not a well-formed argon2 hash",
        ),
    }
    for form, (stored, _reason) in broken.items():
        assert not verify_password(stored, "legacy-password-4"), form
    lines = [
        line(f"{n}@hashes.example", password_hash=stored)
        for n, (stored, _reason) in enumerate(broken.values())
    ]

    report = importer.import_accounts("client", lines)

    for form, entry in zip(broken, report.lines, strict=True):
        assert entry.outcome == "rejected", form
        assert entry.detail.startswith("unsupported password_hash: " + broken[form][1]), form
    assert users() == []


def test_hashes_at_the_bounds_and_argon2_version_1_0_are_imported(app_ctx):
    from argon2.low_level import hash_secret

    fast = {"time_cost": 1, "parallelism": 1, "hash_len": 16, "type": Type.ID}
    version_10 = hash_secret(b"legacy-5", b"saltsalt", memory_cost=1024, version=16, **fast)
    hashes = {
        "bcrypt cost 04": bcrypt.hashpw(b"legacy-5", bcrypt.gensalt(4)).decode(),
        "argon2 v=16": version_10.decode(),
        "argon2 256 MiB x 4 (libsodium moderate is x 3)": (
            "$argon2id$v=19$m=262144,t=4,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
        ),
    }
    lines = [line(f"{n}@bounds.example", password_hash=h) for n, h in enumerate(hashes.values())]

    report = importer.import_accounts("client", lines)

    assert [entry.outcome for entry in report.lines] == ["imported"] * 3, report.lines
    assert verify_password(hashes["bcrypt cost 04"], "legacy-5")
    assert verify_password(hashes["argon2 v=16"], "legacy-5")


def test_a_byte_order_mark_and_windows_line_ends_are_tolerated(app, app_ctx, tmp_path):
    path = tmp_path / "windows.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf" + (line("bom@x.example") + "\r\n" + line("crlf@x.example")).encode()
    )
    args = ["import-accounts", "--hub", "client", "--json", str(path)]
    result = app.test_cli_runner().invoke(main, args=args)
    assert json.loads(result.output)["summary"]["imported"] == 2


def test_a_line_that_is_not_utf8_is_rejected_and_the_rest_imported(app, app_ctx, tmp_path):
    path = tmp_path / "latin1.jsonl"
    latin1 = '{"email": "jose@x.example", "name": "José", "organization": "O", "role": "owner"}'
    latin1 = latin1.encode("latin-1")
    path.write_bytes(
        b"\n".join([line("a@x.example").encode(), latin1, line("b@x.example").encode()])
    )
    args = ["import-accounts", "--hub", "client", "--json", str(path)]
    result = app.test_cli_runner().invoke(main, args=args)

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["summary"]["imported"] == 2 and report["summary"]["rejected"] == 1
    [rejected] = [entry for entry in report["lines"] if entry["outcome"] == "rejected"]
    assert rejected["line"] == 2 and "UTF-8" in rejected["detail"]


def test_values_the_database_cannot_store_are_rejected_lines_not_a_stopped_run(
    app_ctx, run_cli, tmp_path
):
    long_hash = "$argon2id$v=19$m=65536,t=3,p=4$" + "c2FsdA" * 30 + "$" + "aGFzaA" * 20
    lines = [
        line("nul@x.example", name="Nul\x00Name"),
        line("ctl@x.example", organization="Shop\x07"),
        line("long@x.example", password_hash=long_hash),
        line("fine@x.example"),
    ]

    report = json.loads(run_cli(tmp_path, "client", lines, "--json"))

    assert report["summary"]["rejected"] == 3 and report["summary"]["imported"] == 1
    by_line = {entry["line"]: entry["detail"] for entry in report["lines"]}
    assert "control character" in by_line[1] and "control character" in by_line[2]
    assert "password_hash" in by_line[3]


@pytest.mark.parametrize("override", ["\u202e", "\u2067"])
def test_a_name_with_an_invisible_direction_control_is_a_rejected_line(
    app_ctx, run_cli, tmp_path, override
):
    lines = [line("pat@x.example", organization=f"Acme{override}ecivres"), line("ok@x.example")]

    report = json.loads(run_cli(tmp_path, "partner", lines, "--json"))

    assert report["summary"]["rejected"] == 1 and report["summary"]["imported"] == 1
    [rejected] = [entry for entry in report["lines"] if entry["outcome"] == "rejected"]
    assert rejected["line"] == 1 and "text-direction control" in rejected["detail"]


@pytest.mark.parametrize("separator", ["\u2028", "\u2029"])
def test_a_name_with_a_line_or_paragraph_separator_is_a_rejected_line(
    app_ctx, run_cli, tmp_path, separator
):
    lines = [
        line("pat@x.example", organization=f"Acme{separator}Bcc: mallory@evil.example"),
        line("sam@x.example", name=f"Sam{separator}Smith", organization="Globex"),
        line("fine@x.example", organization="Initech"),
    ]

    report = json.loads(run_cli(tmp_path, "partner", lines, "--json"))

    assert report["summary"]["rejected"] == 2 and report["summary"]["imported"] == 1
    by_line = {entry["line"]: entry["detail"] for entry in report["lines"]}
    assert "line break" in by_line[1] and "line break" in by_line[2]
    names = set(db.session.scalars(db.select(Organization.name)))
    assert names == {"Initech"}
