"""Shared fixtures of the test suite, and the rule that a skipped test fails the run when DESCEND_REQUIRE_ORACLE=1."""
import os

import numpy as np
import pytest

# scikit-learn's estimator check `check_array_api_input` (tests/test_sklearn.py) runs only when SciPy's
# array-API mode is on, which must be set before SciPy is first imported; otherwise it skips.
os.environ.setdefault("SCIPY_ARRAY_API", "1")
REQUIRE = "DESCEND_REQUIRE_ORACLE"


@pytest.fixture
def rng():
    """A fresh generator with a fixed seed, so every test is reproducible on its own."""
    return np.random.default_rng(1234)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # CI sets DESCEND_REQUIRE_ORACLE=1 (.ci/run): there a skip means an oracle or a package is missing,
    # and a suite that passes by skipping checks nothing, so the skip is turned into a failure.
    _fail_a_skip((yield).get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    _fail_a_skip((yield).get_result())  # a whole module skipped at import (e.g. a missing package)


def _fail_a_skip(report) -> None:
    if os.environ.get(REQUIRE) == "1" and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under {REQUIRE}=1, which forbids skips: {reason}"
