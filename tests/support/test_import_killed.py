"""A real ``idp import-accounts`` process killed mid-batch leaves only whole batches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from idp.accounts.models import User
from idp.extensions import db
from idp.orgs.models import Organization
from idp.support.importer import import_accounts
from idp.support.models import ImportedAccount

IDP = str(Path(sys.executable).with_name("idp"))


def _line(n: int) -> str:
    fields = {"email": f"k{n}@legacy.example", "name": f"K {n}", "organization": f"Shop {n}"}
    return json.dumps(fields | {"role": "owner"})


def _imported() -> int:
    db.session.rollback()
    return db.session.scalar(db.select(db.func.count()).select_from(ImportedAccount))


def test_kill_9_during_a_batch_then_rerun(app_ctx, database_url, instance_dir, tmp_path):
    fifo = tmp_path / "legacy.jsonl"
    os.mkfifo(fifo)
    env = os.environ | {
        "IDP_DATABASE_URL": database_url,
        "IDP_INSTANCE_PATH": str(instance_dir),
        "IDP_LOG_LEVEL": "WARNING",
    }
    args = [IDP, "import-accounts", "--hub", "client", "--batch-size", "2", str(fifo)]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        with open(fifo, "w") as feed:
            # lines 1-4 make two whole batches; line 5 opens a third that never commits
            feed.write("\n".join(_line(n) for n in range(1, 6)) + "\n")
            feed.flush()
            deadline = time.monotonic() + 60
            while _imported() < 4:
                assert time.monotonic() < deadline, "the importer committed nothing"
                assert proc.poll() is None, proc.stdout.read().decode()
                time.sleep(0.1)
            time.sleep(0.5)  # let it take line 5 into its open transaction
            proc.kill()
            proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()

    assert proc.returncode == -9
    assert _imported() == 4
    assert db.session.scalar(db.select(Organization).where(Organization.name == "Shop 5")) is None

    report = import_accounts("client", [_line(n) for n in range(1, 8)], batch_size=2)

    assert report.summary()["unchanged"] == 4 and report.summary()["imported"] == 3
    emails = db.session.scalars(db.select(User.email).where(User.hub == "client")).all()
    assert sorted(emails) == [f"k{n}@legacy.example" for n in range(1, 8)]
