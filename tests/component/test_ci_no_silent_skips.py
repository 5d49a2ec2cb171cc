"""Under CI=true no test is skipped silently (tests/conftest.py): a skip becomes a failure, except
the parametrized cases listed in CI_ALLOWED_SKIPS. Checked by running a small suite with the hook."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.component
pytest_plugins = ["pytester"]

SUITE = '''
import shutil
import pytest

def test_needs_root():
    pytest.skip("mounting a size-limited tmpfs needs root")

@pytest.mark.skipif(shutil.which("no-such-binary-xyz") is None, reason="no-such-binary-xyz not installed")
def test_needs_a_binary():
    pass

def test_runs():
    assert True

@pytest.mark.xfail(reason="known", strict=True)
def test_expected_failure():
    assert False
'''


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    pytester.makeconftest("from tests.conftest import pytest_runtest_makereport  # noqa: F401\n")
    pytester.makepyfile(test_suite=SUITE)
    return pytester


def test_skips_fail_under_ci(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    result = suite.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1, errors=1, xfailed=1)  # a skipif skips at setup: an error
    result.stdout.fnmatch_lines(["*skipped under CI=true*needs root*", "*skipped under CI=true*not installed*"])


def test_skips_stay_skips_outside_ci(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    result = suite.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=2, xfailed=1)
