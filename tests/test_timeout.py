"""No test can hang the suite: pytest-timeout, with this project's method, ends a test that loops
forever within its timeout (a marker's, or the global one from the ini file)."""

import subprocess
import sys
import time

import pytest

FOREVER = """
import pytest

{marker}
def test_loops_forever():
    while True:
        pass
"""


def run_inner(tmp_path, request, marker, timeout):
    """Runs ``FOREVER`` in a pytest of its own (the thread method ends the whole process) with
    this session's ``timeout_method`` and the global ``timeout``; ``(seconds, output)``."""
    method = request.config.getini("timeout_method")
    assert method, "pytest-timeout is not active in this session"
    (tmp_path / "test_forever.py").write_text(FOREVER.format(marker=marker))
    (tmp_path / "pytest.ini").write_text(
        f"[pytest]\ntimeout = {timeout}\ntimeout_method = {method}\n"
    )
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_forever.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    seconds = time.perf_counter() - start
    assert out.returncode != 0, out.stdout
    return seconds, out.stdout + out.stderr


@pytest.mark.parametrize(
    ("marker", "timeout"),
    [("@pytest.mark.timeout(2)", 600), ("", 2)],
    ids=["marker", "global"],
)
def test_a_test_that_loops_forever_fails_within_its_timeout(tmp_path, request, marker, timeout):
    seconds, output = run_inner(tmp_path, request, marker, timeout)
    assert "Timeout" in output and "test_loops_forever" in output, output[-3000:]
    assert seconds < 60, seconds  # 2 s, plus the inner pytest's start-up on a busy machine


def test_this_suite_has_a_global_timeout(request):
    """Every test here runs under a per-test timeout (the ini's), not only the marked ones."""
    assert float(request.config.getini("timeout")) > 0
