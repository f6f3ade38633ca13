"""The code's layout stays as docs/architecture.md states it: small modules."""

import os
import pathlib

import pytest

SRC = pathlib.Path(__file__).resolve().parent.parent / "src" / "steploop"

#: The most lines a module may have (one concept per module).
MOST_LINES = 400


@pytest.mark.skipif(
    bool(os.environ.get("STEPLOOP_MUTATION")), reason="a mutation run rewrites every module"
)
def test_no_module_is_over_400_lines():
    long = {
        str(path.relative_to(SRC)): n
        for path in sorted(SRC.rglob("*.py"))
        if (n := len(path.read_text().splitlines())) > MOST_LINES
    }
    assert long == {}, f"modules over {MOST_LINES} lines: {long}"
