"""ProgressBar: one tick per step, the loss in the postfix, closed at the end of every run."""

import io

import pytest

import steploop as sl
from tests.helpers import quadratic


def test_progress_bar_counts_steps_across_runs():
    out = io.StringIO()
    bar = sl.ProgressBar(total=12, file=out)
    trainer = sl.Trainer(quadratic(0.25), callbacks=[bar])
    trainer.run(max_steps=5)
    first = out.getvalue()
    assert "5/12" in first and "loss=" in first and "status=budget" in first
    assert first.endswith("status=budget]\n") and first.count("\n") == 1  # closed: its last line
    trainer.run(max_steps=7)
    assert "12/12" in out.getvalue()
    assert out.getvalue().endswith("status=budget]\n") and out.getvalue().count("\n") == 2


def test_progress_bar_arguments():
    with pytest.raises(ValueError, match="ProgressBar total must be an int >= 1, got 0"):
        sl.ProgressBar(total=0)
    with pytest.raises(TypeError, match="every must be an int"):
        sl.ProgressBar(every=1.5)
