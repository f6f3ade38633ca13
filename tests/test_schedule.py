"""Schedules: one statement of "at which steps" for every callback and for fused calls."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

import steploop as sl
from tests.helpers import quadratic

schedules = st.one_of(
    st.integers(1, 12).map(sl.every),
    st.lists(st.integers(1, 60), min_size=1, max_size=6).map(lambda steps: sl.at(*steps)),
)


@given(schedules, st.integers(0, 60), st.integers(1, 40))
def test_first_within_is_the_first_step_that_fires(schedule, after, count):
    """first_within(after, count) equals scanning after+1 .. after+count with fires()."""
    scanned = next((s for s in range(after + 1, after + count + 1) if schedule.fires(s)), None)
    assert schedule.first_within(after, count) == scanned


class Seen(sl.Callback):
    def __init__(self, live=False):
        self.steps, self.variables = [], []
        self.needs_live_state = live

    def on_step_end(self, trainer, record):
        self.steps.append(record.step)
        if self.needs_live_state:
            self.variables.append(float(record.variables["x"]))


@given(schedules, st.integers(1, 12))
def test_every_with_a_schedule_fires_on_its_steps_and_ends_fused_calls_there(schedule, k):
    """Every(live callback, schedule) sees exactly the scheduled steps, with live variables,
    fused or not; both runs give the same variables."""
    seen = []
    for per_call in (1, k):
        callback = Seen(live=True)
        sl.Trainer(quadratic(0.05), [callback.every(schedule)], steps_per_call=per_call).run(
            max_steps=60
        )
        assert callback.steps == [s for s in range(1, 61) if schedule.fires(s)]
        seen.append(callback.variables)
    assert seen[0] == seen[1]


def test_loggers_and_checkpoints_take_a_schedule(tmp_path):
    csv = tmp_path / "log.csv"
    trainer = sl.Trainer(
        quadratic(),
        [sl.CSVLogger(csv, every=sl.at(2, 5)), sl.Checkpoint(tmp_path / "c", every=sl.at(3))],
        steps_per_call=4,
    )
    trainer.run(max_steps=6)
    assert [line.split(",")[0] for line in csv.read_text().split()] == ["step", "2", "5"]
    assert sorted(p.name for p in (tmp_path / "c").glob("ckpt-*.trainer.json")) == [
        "ckpt-3.trainer.json",
        "ckpt-6.trainer.json",  # and at the run's end
    ]
    assert repr(sl.PrintLogger(every=sl.at(1, 3))) == "PrintLogger(every=at(1, 3))"
    assert repr(sl.PrintLogger(every=10)) == "PrintLogger(every=10)"


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: sl.every(0), ValueError, "every must be an int >= 1, got 0"),
        (lambda: sl.at(), ValueError, r"at\(\) needs at least one step"),
        (lambda: sl.at(0), ValueError, "at step must be an int >= 1, got 0"),
        (lambda: sl.CSVLogger("x.csv", every="5"), TypeError,
         r"every must be an int or a steploop.Schedule \(every\(n\), at\(...\)\), got '5'"),
        (lambda: sl.Checkpoint(".", every=2.5), TypeError, "Checkpoint every must be an int or"),
    ],
)
def test_bad_schedules_are_named(build, error, message):
    with pytest.raises(error, match=message):
        build()
