"""A check that counts other tests' evidence counts only the tests that really ran and passed.

``test_every_documented_problem_code_is_reached_by_a_test`` counts the ``@reaches`` tests
through ``tests/fixtures/outcomes.py``; these runs of a small suite show what it is told.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]

EVIDENCE = """
import pytest

def test_passes():
    pass

@pytest.mark.skip(reason="not here")
def test_skipped():
    pass

def test_fails():
    assert False

@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown failed")

def test_fails_in_teardown(broken_teardown):
    pass

def test_passes_deselected():
    pass

def test_fails_deselected():
    assert False
"""

# Named to sort (and be collected) before the evidence, which must run first all the same.
CHECK = """
import json

EVIDENCE = [f"test_evidence.py::{name}" for name in (
    "test_passes", "test_skipped", "test_fails", "test_fails_in_teardown",
    "test_passes_deselected", "test_fails_deselected", "test_nowhere",
)]

def test_check(test_outcomes):
    print("OUTCOMES" + json.dumps(test_outcomes(EVIDENCE)))
"""


@pytest.fixture
def suite(pytester, monkeypatch):
    """A suite with the outcomes plugin, its check and its evidence."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the plugin, in runs of their own too
    pytester.makeconftest('pytest_plugins = ["tests.fixtures.outcomes"]')
    pytester.makepyfile(test_a_check=CHECK, test_evidence=EVIDENCE)
    return pytester


def _told(result) -> dict[str, str]:
    (line,) = [line for line in result.outlines if "OUTCOMES" in line]
    outcomes = json.loads(line.partition("OUTCOMES")[2])
    return {nodeid.split("::")[1]: outcome for nodeid, outcome in outcomes.items()}


def test_only_tests_that_ran_and_passed_count_as_passed(suite):
    result = suite.runpytest("-s", "-p", "no:cacheprovider", "-k", "not deselected")

    assert _told(result) == {
        "test_passes": "passed",
        "test_skipped": "skipped",
        "test_fails": "failed",
        "test_fails_in_teardown": "failed",
        # not run in the session: run on their own, and counted by what happened there
        "test_passes_deselected": "passed",
        "test_fails_deselected": "failed",
        "test_nowhere": "not run",
    }


def test_the_check_alone_runs_its_evidence_on_its_own(suite):
    result = suite.runpytest("-s", "-p", "no:cacheprovider", "test_a_check.py")

    told = _told(result)
    assert told["test_passes"] == "passed" and told["test_skipped"] == "skipped"
    assert told["test_fails"] == told["test_fails_in_teardown"] == "failed"
    result.assert_outcomes(passed=1)
