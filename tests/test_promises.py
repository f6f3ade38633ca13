"""Promises a new user relies on: fused iterate() + break, composites with host-only parts, user
criteria met at the last step, and the friction a first try hit (each fails on the old core)."""

import csv
import logging
import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st

import steploop as sl
from tests.helpers import quadratic
from tests.strategies import steps_per_call


class Seen(sl.Callback):
    """Records every step its hooks see (a logger: it never stops the run)."""

    def __init__(self):
        self.begun, self.ended = [], []

    def on_step_begin(self, trainer, step):
        self.begun.append(step)

    def on_step_end(self, trainer, record):
        self.ended.append(record.step)


class FiresAt(sl.StoppingCriterion):
    """A user's host-only criterion: met at its n-th check for n in ``calls`` (stateful)."""

    def __init__(self, calls):
        self.calls = frozenset(calls)
        self.checked = 0

    def check(self, trainer, record):
        self.checked += 1
        if self.checked in self.calls:
            return sl.Stop(f"fired at step {record.step}", "converged")
        return None


class TwoBelow(sl.StoppingCriterion):
    """The README-style user criterion: two losses in a row below ``tol``."""

    def __init__(self, tol):
        self.tol, self.below = tol, 0

    def check(self, trainer, record):
        self.below = self.below + 1 if record.loss < self.tol else 0
        return sl.Stop(f"two losses below {self.tol}", "converged") if self.below >= 2 else None


# -- a break out of a fused iterate() -----------------------------------------------------------
@given(steps_per_call, st.integers(1, 30), st.integers(0, 30))
def test_break_out_of_fused_iterate_delivers_every_step_once(k, left_at, more):
    """Every step that ran reaches every callback once, in order; a later run() has no gap."""
    seen = Seen()
    trainer = sl.Trainer(quadratic(0.01), [seen], steps_per_call=k)
    for record in trainer.iterate():
        if record.step == left_at:
            break
    assert trainer.result.status == "stopped"
    assert trainer.result.stop_reason == f"the caller left iterate() after step {left_at}"
    assert trainer.step >= left_at
    trainer.run(max_steps=more)
    expected = list(range(1, trainer.step + 1))
    assert seen.begun == seen.ended == expected
    assert trainer.history["step"].tolist() == expected


def test_break_out_of_fused_iterate_keeps_the_csv_complete(tmp_path):
    """The issue's case: steps_per_call=5, break at step 3, then run(): CSV rows 1..N."""
    path = tmp_path / "log.csv"
    trainer = sl.Trainer(quadratic(0.01), [sl.CSVLogger(path)], steps_per_call=5)
    for record in trainer.iterate():
        if record.step == 3:
            break
    trainer.run(max_steps=7)
    rows = list(csv.reader(path.open()))
    assert [int(row[0]) for row in rows[1:]] == list(range(1, trainer.step + 1))
    assert trainer.step > 3 + 7 - 1


# -- composites with a host-only part in fused calls ------------------------------------------
@pytest.mark.parametrize("k", [7, 10, 40])
def test_composite_with_a_host_only_part_stops_exactly_on_its_array_part(k):
    """TimeLimit(600) | MaxSteps(20) with steps_per_call=K stops at 20, as given separately."""
    for callbacks in ([sl.TimeLimit(600) | sl.MaxSteps(20)], [sl.TimeLimit(600), sl.MaxSteps(20)]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = sl.Trainer(quadratic(0.01), callbacks, steps_per_call=k).run()
        assert (result.steps, result.stop_reason) == (20, "MaxSteps(20): reached 20 steps")


@st.composite
def mixed_composites(draw):
    """A factory of composites mixing a never-firing host-only part with array-form parts."""
    n = draw(st.integers(1, 60))
    tol = draw(st.floats(1e-10, 1.0))
    shape = draw(st.sampled_from(["any", "all", "nested"]))

    def build():
        host = FiresAt(())
        if shape == "any":
            return host | sl.MaxSteps(n)
        if shape == "all":
            return (sl.LossBelow(tol) & FiresAt(range(1, 10_000))) | (host | sl.MaxSteps(n))
        return (host | sl.LossBelow(tol)) & sl.LossBelow(tol) | sl.MaxSteps(n)

    return build


@given(mixed_composites(), steps_per_call)
def test_fused_composite_with_host_parts_equals_step_by_step(build, k):
    """While the host-only parts do not fire, a fused run stops where a step-by-step run does,
    with the same reason."""
    outcomes = []
    for per_call in (1, k):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer = sl.Trainer(quadratic(0.05), [build()], steps_per_call=per_call)
        result = trainer.run()
        outcomes.append((result.steps, result.stop_reason, trainer.history["loss"].tolist()))
    assert outcomes[0] == outcomes[1]


def test_a_host_only_part_may_run_past_and_says_where_it_stopped():
    """Only the host-only part runs past its step (by less than a call), and the reason names
    the step the run really ended at."""
    with pytest.warns(UserWarning, match=r"its part\(s\) FiresAt have no array form"):
        trainer = sl.Trainer(
            quadratic(0.05), [FiresAt({5}) | sl.MaxSteps(100)], steps_per_call=10
        )
    result = trainer.run()
    assert 5 <= result.steps < 5 + 10
    assert result.stop_reason == (
        "fired at step 5 (asked after step 5; took effect after step "
        f"{result.steps}, the last step of its fused call)"
    )


# -- a criterion met at the last step stops the next run before its first step ---------------
@given(st.sets(st.integers(1, 40), min_size=1, max_size=5), st.sampled_from([1, 3, 8]))
def test_a_user_criterion_met_at_the_last_step_stops_the_next_run(calls, k):
    """A check-only user criterion that fired at the run's last step ends a second run() at once,
    with the same reason; one whose stop took effect later (inside a fused call) was not met at
    the last step, so the next run goes on."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = sl.Trainer(quadratic(0.05), [FiresAt(calls)], steps_per_call=k)
    first = trainer.run()
    assert first.status == "converged"
    again = trainer.run(max_steps=3)  # bounded: the criterion may never fire again
    if first.steps in calls:  # met at the last step: stopped again, saying so
        assert (again.steps, again.status) == (first.steps, first.status)
        assert again.stop_reason == f"fired at step {first.steps}"
        if first.steps == min(calls):
            assert again.stop_reason == first.stop_reason
    else:
        assert k > 1 and "took effect after step" in first.stop_reason
        assert again.steps == first.steps + 3 or again.status == "converged"
    assert trainer.history.rows == again.steps


class TwoBelowArray(sl.StoppingCriterion):
    """The same user criterion in array form (fused calls evaluate it in the loop)."""

    array_form = True

    def __init__(self, tol):
        self.tol, self.below = tol, 0.0

    def state(self):
        return (self.below,)

    def load(self, state):
        (self.below,) = state

    def test(self, ops, state, q):
        below = ops.where(q.loss < self.tol, state[0] + 1.0, 0.0)
        return below >= 2.0, (below,)

    def reason(self, q):
        return f"two losses below {self.tol} by step {q.step}"


@given(st.floats(1e-12, 10.0), st.sampled_from([1, 2, 7]))
def test_a_stateful_array_form_user_criterion_stops_the_next_run_at_once(tol, k):
    """The rule holds for an array-form user criterion with state, fused or not, with nothing
    extra written."""
    trainer = sl.Trainer(quadratic(0.05), [TwoBelowArray(tol)], steps_per_call=k)
    first = trainer.run()
    again = trainer.run()
    assert (again.steps, again.stop_reason) == (first.steps, first.stop_reason)


def test_a_stateful_user_criterion_does_not_take_one_more_step():
    """Two losses in a row below tol fires at step s; run() again takes no step s+1."""
    trainer = sl.Trainer(quadratic(0.1), [TwoBelow(1e-6)])
    first = trainer.run()
    again = trainer.run()
    assert again.steps == first.steps and again.stop_reason == first.stop_reason


def test_a_restored_run_that_had_converged_stops_at_once(tmp_path):
    """The verdict is in the checkpoint: a resumed trainer with a user criterion takes no step."""
    trainer = sl.Trainer(quadratic(0.1), [TwoBelow(1e-6), sl.Checkpoint(tmp_path, every=1000)])
    first = trainer.run()
    resumed = sl.Trainer(quadratic(0.1), [TwoBelow(1e-6), sl.Checkpoint(tmp_path, every=1000)])
    assert resumed.restore(tmp_path) == first.steps
    again = resumed.run()
    assert (again.steps, again.stop_reason) == (first.steps, first.stop_reason)
    assert again.loss == first.loss == resumed.history["loss"][-1]  # from the history, not nan


def test_changed_settings_void_the_verdict():
    """A tightened tolerance is tested on a new step, not answered by the old verdict."""
    criterion = sl.LossBelow(1e-6)
    trainer = sl.Trainer(quadratic(0.1), [criterion])
    first = trainer.run()
    criterion.tol = 1e-12
    assert trainer.run().steps > first.steps


# -- friction ----------------------------------------------------------------------------------
def test_a_misspelled_hook_fails_at_construction_naming_the_real_one():
    class Typo(sl.Callback):
        def on_step_ends(self, trainer, record):
            pass

    with pytest.raises(TypeError, match=r"callbacks\[0\] \(Typo\)\.on_step_ends is not a callback "
                       r"hook and would never be called; did you mean on_step_end\?"):
        sl.Trainer(quadratic(), [Typo()], steps_per_call=1)


def test_only_callbacks_that_may_stop_get_the_fused_warning():
    """A logger is not warned about; a callback that calls trainer.stop is, with the fix."""

    class Stops(sl.Callback):
        def on_step_end(self, trainer, record):
            if record.loss < 1.0:
                trainer.stop("low")

    assert not Seen.may_stop and Stops.may_stop
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sl.Trainer(quadratic(), [Seen(), sl.MaxSteps(5)], steps_per_call=4)
    with pytest.warns(UserWarning, match=r"set may_stop = False on Stops to silence"):
        sl.Trainer(quadratic(), [Stops(), sl.MaxSteps(5)], steps_per_call=4)


def test_restore_from_nothing_says_so_on_the_log(tmp_path, caplog):
    trainer = sl.Trainer(quadratic(), [sl.MaxSteps(3), sl.Checkpoint(tmp_path / "a", every=2)])
    with caplog.at_level(logging.INFO, logger="steploop"):
        assert trainer.restore(tmp_path / "b") is None
    assert f"no checkpoint in {str(tmp_path / 'b')!r} yet; nothing restored" in caplog.text


@given(st.integers(2, 9), st.integers(1, 9), st.integers(1, 12))
def test_an_error_inside_a_fused_call_leaves_the_trainer_where_the_variables_are(k, fail_at, more):
    """A callback raising mid-call: the call's later steps ran, so they are counted (history and
    step, no callbacks); a later run continues exactly like one uninterrupted run."""
    from tests.helpers import RaiseAt

    strategy = quadratic(0.05)
    trainer = sl.Trainer(strategy, [RaiseAt(fail_at)], steps_per_call=k)
    with pytest.raises(RuntimeError):
        trainer.run(max_steps=20)
    assert trainer.history["step"].tolist() == list(range(1, trainer.step + 1))
    done = trainer.step
    reference = quadratic(0.05)
    sl.Trainer(reference, [sl.MaxSteps(done)]).run()
    assert float(strategy.params["x"]) == float(reference.params["x"])
    trainer2 = sl.Trainer(strategy, [], steps_per_call=k)
    trainer2.run(max_steps=more)
    sl.Trainer(reference, []).run(max_steps=more)
    assert float(strategy.params["x"]) == float(reference.params["x"])


def test_a_fused_call_that_does_no_step_is_refused_by_name():
    class Lazy(sl.StepStrategy):
        ready_to_fuse = True

        def step(self):
            return sl.StepOutput(loss=1.0)

        def run_steps(self, count, first_step, stopper, feed, keep):
            from steploop.strategy import FusedResult, StepOutput

            return FusedResult(steps=0, output=StepOutput(loss=[]))

    trainer = sl.Trainer(Lazy(), [sl.MaxSteps(10)], steps_per_call=4)
    with pytest.raises(ValueError, match=r"Lazy\.run_steps did no step, yet neither the data"):
        trainer.run()
