"""With DESCEND_REQUIRE_ORACLE=1 a skipped test fails the run (CI); without it a skip stays a skip."""
import os
import subprocess
import sys
import tomllib
from pathlib import Path

HERE = Path(__file__).parent


def _run_probe(probe: str, require: str | None):
    env = {k: v for k, v in os.environ.items() if k != "DESCEND_REQUIRE_ORACLE"}
    if require is not None:
        env["DESCEND_REQUIRE_ORACLE"] = require
    return subprocess.run([sys.executable, "-m", "pytest", "-o", "addopts=", "-rA", "-p", "no:cacheprovider",
                           "-p", "no:xdist", str(HERE / probe)], capture_output=True, text=True, env=env, cwd=HERE)


def test_a_skipped_test_fails_the_run_when_the_oracle_is_required():
    r = _run_probe("_skip_probe.py", "1")
    assert r.returncode == 1, r.stdout
    assert "1 failed, 1 passed" in r.stdout and "forbids skips: Skipped: oracle missing (planted)" in r.stdout, r.stdout


def test_a_module_skipped_at_import_fails_the_run_when_the_oracle_is_required():
    r = _run_probe("_skip_probe_module.py", "1")
    assert r.returncode != 0 and "forbids skips: Skipped: module missing (planted)" in r.stdout, r.stdout


def test_a_skip_is_a_skip_otherwise():
    for probe, counts in (("_skip_probe.py", "1 passed, 1 skipped"), ("_skip_probe_module.py", "1 skipped")):
        r = _run_probe(probe, None)
        assert r.returncode == (0 if "passed" in counts else 5) and counts in r.stdout, r.stdout


def test_the_ci_script_requires_the_oracle_and_the_extras_pin_it():
    root = HERE.parent
    assert "DESCEND_REQUIRE_ORACLE=1 make test" in (root / ".ci" / "run").read_text()
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    assert "torch==2.13.0" in extras
