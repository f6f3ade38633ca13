"""Pins of the Trainer's loop (trainer.py), of RunResult's timing (records.py) and of ErrorRelay."""

import logging
import os
import pathlib
import time

import attrs
import pytest

import steploop as sl
from steploop.autofuse import CallSizes
from steploop.numpy import GradientDescent
from steploop.python_loop import run_steps_in_python
from steploop.relay import ErrorRelay
from tests.helpers import RaiseAt, Recorder, batch_replay, quadratic

MUTATION_RUN = bool(os.environ.get("STEPLOOP_MUTATION"))


def toward_batch():
    """Gradient descent on (x - batch)**2 from 0, learning rate 0.5."""
    return GradientDescent(lambda x, b: ((x - b) ** 2, 2 * (x - b)), 0.0, learning_rate=0.5)


class Prepares(GradientDescent):
    """DataAware: prepares its data (each batch times 10) and notes where each pass starts."""

    def __init__(self):
        super().__init__(lambda x, b: ((x - b) ** 2, 2 * (x - b)), 0.0, learning_rate=0.5)
        self.starts = []

    def prepare_data(self, data):
        return [10.0 * batch for batch in data]

    def data_from(self, data, position):
        self.starts.append(position)
        return iter(data[position:])


class Fused(GradientDescent):
    """Fusable: ``run_steps`` is the Python loop; it notes each call's size and whether a batch
    was pending, and with ``claims_stop`` reports that its in-graph criteria fired."""

    ready_to_fuse = True

    def __init__(self, loss_and_grad, claims_stop=False):
        super().__init__(loss_and_grad, 0.0, learning_rate=0.1)
        self.calls = []
        self.claims_stop = claims_stop

    def run_steps(self, count, first_step, stopper, feed, keep):
        self.calls.append((count, feed is not None and feed.has_pending))
        result = run_steps_in_python(self, count, first_step, stopper, feed, keep)
        return attrs.evolve(result, stopped=True) if self.claims_stop else result


class Releases(GradientDescent):
    """The quadratic, Releasing: notes how many steps it had taken at each ``release()``."""

    def __init__(self):
        super().__init__(lambda x: ((x - 4.0) ** 2, 2.0 * (x - 4.0)), 0.0, learning_rate=0.1)
        self.taken = 0
        self.released = []

    def step(self, batch=None):
        self.taken += 1
        return super().step(batch)

    def release(self):
        self.released.append(self.taken)


class EpochEnds(sl.Callback):
    """Epoch hooks only: notes (epoch, trainer.step, whether every(epochs=1) fires there)."""

    def __init__(self):
        self.schedule = sl.every(epochs=1)
        self.seen = []

    def on_epoch_end(self, trainer, epoch):
        self.seen.append((epoch, trainer.step, self.schedule.fires(trainer.step)))


class ShortLen:
    """Data whose len() says 3 batches, though a pass yields 2."""

    def __len__(self):
        return 3

    def __iter__(self):
        return iter([1.0, 2.0])


def raising_at(call, message):
    """The quadratic's loss_and_grad, raising ValueError(message) at its ``call``-th call."""
    calls = []

    def loss_and_grad(x):
        calls.append(x)
        if len(calls) == call:
            raise ValueError(message)
        return (x - 4.0) ** 2, 2.0 * (x - 4.0)

    return loss_and_grad


# -- records.py / relay.py ----------------------------------------------------------------------
def test_run_result_elapsed_is_the_calls_wall_time():
    """RunResult.elapsed is a float between 0 and the wall time around the run call."""
    trainer = sl.Trainer(quadratic())
    before = time.perf_counter()
    result = trainer.run(max_steps=3)
    after = time.perf_counter()
    assert isinstance(result.elapsed, float)
    assert 0.0 <= result.elapsed <= after - before


def test_relay_reraises_the_functions_own_error_when_none_was_remembered():
    """A fresh ErrorRelay lets the function's error through unchanged."""
    relay = ErrorRelay()

    def fails():
        raise KeyError("plain")

    with pytest.raises(KeyError, match="plain"):
        relay.call(fails)


# -- a fresh Trainer ------------------------------------------------------------------------------
def test_a_fresh_trainer_has_no_stop_request_and_no_result():
    """Before any run, stop_requested and result are None."""
    trainer = sl.Trainer(quadratic())
    assert trainer.stop_requested is None
    assert trainer.result is None


def test_nested_run_is_refused_with_its_message():
    """run() from inside a hook of the same Trainer raises the exact RuntimeError."""

    class Nests(sl.Callback):
        def on_step_end(self, trainer, record):
            trainer.run(max_steps=1)

    trainer = sl.Trainer(quadratic(), [Nests()])
    with pytest.raises(RuntimeError) as raised:
        trainer.run(max_steps=2)
    assert str(raised.value) == "this Trainer is already running; run/iterate do not nest"


def test_a_failed_step_is_logged_at_debug_with_its_step_and_error(caplog):
    """A step that raises logs 'run failed at step N: <repr>' under "steploop" at DEBUG."""
    trainer = sl.Trainer(GradientDescent(raising_at(3, "bad step"), 0.0, learning_rate=0.1))
    with (
        caplog.at_level(logging.DEBUG, logger="steploop"),
        pytest.raises(ValueError, match=r"^bad step$"),
    ):
        trainer.run(max_steps=5)
    assert trainer.step == 2
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert "run failed at step 3: ValueError('bad step')" in debug


# -- data -----------------------------------------------------------------------------------------
def test_a_data_aware_strategy_prepares_the_data_and_reads_it_its_own_way():
    """prepare_data's batches are the ones stepped on, read through the strategy's data_from."""
    strategy = Prepares()
    trainer = sl.Trainer(strategy, data=[1.0, 2.0, 3.0])
    result = trainer.run()
    # batches 10, 20, 30; x goes 0 -> 10 -> 20 (lr 0.5 lands on the batch): loss 100 each time
    assert trainer.history["loss"].tolist() == [100.0, 100.0, 100.0]
    assert strategy.starts == [0]
    assert result.stop_reason == "data exhausted after 3 steps"


@pytest.mark.parametrize("with_step_begin", [False, True])
def test_a_stop_asked_while_a_batch_is_fetched_ends_the_run_before_its_step(with_step_begin):
    """A stop the data asks for as it yields a batch ends the run before that batch's step (with
    or without an on_step_begin hook); the batch is put back, and the next run starts with it."""
    seen = []
    trainers = []

    def batches():
        for batch in (1.0, 2.0, 3.0, 4.0):
            if batch == 2.0:
                trainers[0].stop("the data says stop")
            yield batch

    class Begin(sl.Callback):
        def on_step_begin(self, trainer, step):
            pass

    trainer = sl.Trainer(batch_replay(seen), [Begin()] if with_step_begin else [], data=batches())
    trainers.append(trainer)
    result = trainer.run()
    assert (result.steps, result.status, result.stop_reason) == (1, "stopped", "the data says stop")
    assert seen == [1.0]
    assert trainer.run().steps == 4
    assert seen == [1.0, 2.0, 3.0, 4.0]


@pytest.mark.skipif(MUTATION_RUN, reason="mutmut's trampolines add frames to every call")
def test_the_host_stopper_warning_points_at_the_line_that_builds_the_trainer():
    """The warning about host-checked stoppers under steps_per_call=K names the caller's line."""
    with pytest.warns(UserWarning, match="may stop the run") as caught:
        sl.Trainer(quadratic(), [sl.MaxSteps(9), sl.TimeLimit(60)], steps_per_call=4)
    assert [pathlib.Path(w.filename).name for w in caught] == ["test_pin_trainer.py"]


def test_the_trainer_asks_for_the_warning_at_its_caller(monkeypatch):
    """Trainer.__init__ asks CallSizes.warn for stacklevel 2, its caller's frame (the test above
    checks the line; this hand-off is what a mutation run, whose trampolines add frames, sees)."""
    asked = []
    monkeypatch.setattr(CallSizes, "warn", lambda calls, stacklevel: asked.append(stacklevel))
    sl.Trainer(quadratic(), [sl.MaxSteps(9)], steps_per_call=4)
    assert asked == [2]


def test_an_epoch_shorter_than_its_len_ends_and_the_next_begins(caplog):
    """A pass that ends before len(data) batches ends its epoch (warned); the run goes on to
    the next epoch and ends exhausted after the last."""
    seen = []
    trainer = sl.Trainer(batch_replay(seen), data=ShortLen(), epochs=2)
    with caplog.at_level(logging.WARNING, logger="steploop"):
        result = trainer.run()
    assert seen == [1.0, 2.0, 1.0, 2.0]
    assert (result.status, result.stop_reason) == (
        "exhausted",
        "data exhausted after 2 epochs (4 steps)",
    )
    assert trainer.history["epoch"].tolist() == [1, 1, 2, 2]
    assert [r.getMessage() for r in caplog.records] == [
        "epoch 1 ended after 2 batches, though len(data) is 3",
        "epoch 2 ended after 2 batches, though len(data) is 3",
    ]


# -- fused calls ----------------------------------------------------------------------------------
def test_a_fused_call_failing_leaves_the_last_record_expired():
    """A step raising inside a later fused call (run in Python) re-raises its error as is, after
    the steps of that call before it were recorded, as plain steps leave them: the record of the
    step before the failing one no longer gives variables, and the callbacks saw its beginning."""
    events = []
    trainer = sl.Trainer(
        GradientDescent(raising_at(5, "bad step"), 0.0, learning_rate=0.1),
        [Recorder(events)],
        steps_per_call=3,
    )
    with pytest.raises(ValueError, match=r"^bad step$"):
        trainer.run(max_steps=9)
    assert trainer.step == 4
    assert trainer.last_record.step == 4
    with pytest.raises(RuntimeError) as gone:
        trainer.last_record.variables  # noqa: B018
    assert str(gone.value) == (
        "StepRecord.variables of step 4 is gone: variables are read on demand while their step "
        "is current (in its callbacks or the body of an iterate() loop)"
    )
    assert events[-4:] == [
        ("cb", "step_end", 4),
        ("cb", "step_begin", 5),
        ("cb", "error", "ValueError"),
        ("cb", "run_end", "error"),
    ]


class FailsInCall(GradientDescent):
    """Fusable: its calls raise after moving ``x`` (as a compiled loop that fails midway, whose
    steps are lost with the error while the variables were updated)."""

    ready_to_fuse = True

    def __init__(self):
        super().__init__(lambda x: ((x - 4.0) ** 2, 2.0 * (x - 4.0)), 0.0, learning_rate=0.1)

    def run_steps(self, count, first_step, stopper, feed, keep):
        self.params["x"] = self.params["x"] + 1.0
        raise FloatingPointError("the call failed at its third step")


def test_a_compiled_call_failing_leaves_the_record_before_it_without_variables():
    """The record of the step before a call that raised no longer gives variables: the call may
    have changed them (the step count stays), so reading them must not answer for that step."""
    strategy = FailsInCall()
    trainer = sl.Trainer(strategy, [sl.MaxSteps(9)], steps_per_call=4)
    trainer.run(max_steps=1)  # one step: a plain one
    held = trainer.last_record
    assert held.step == 1  # its variables not read while current: none kept
    with pytest.raises(FloatingPointError, match="the call failed at its third step"):
        trainer.run()
    assert float(strategy.variables()["x"]) == pytest.approx(0.8 + 1.0) and trainer.step == 1
    with pytest.raises(RuntimeError, match=r"^StepRecord\.variables of step 1 is gone"):
        held.variables  # noqa: B018


def test_an_error_while_delivering_a_left_fused_call_is_the_runs_error():
    """Leaving iterate() mid-call delivers the call's later steps; one raising there reaches
    on_error and the result, with every step of the call counted."""
    events = []
    trainer = sl.Trainer(quadratic(), [Recorder(events), RaiseAt(2)], steps_per_call=3)
    records = trainer.iterate()
    assert next(records).step == 1
    with pytest.raises(RuntimeError, match=r"^died at step 2$"):
        records.close()
    assert trainer.step == 3
    assert trainer.history["step"].tolist() == [1, 2, 3]
    assert ("cb", "error", "RuntimeError") in events
    assert events[-1] == ("cb", "run_end", "error")
    assert trainer.result.status == "error"
    assert trainer.result.stop_reason == "RuntimeError after step 3: died at step 2"


def test_no_agreement_warning_when_the_host_stopped_too(caplog):
    """A fused call stopped by LossBelow, which the host check confirms, logs no warning."""
    trainer = sl.Trainer(quadratic(), [sl.LossBelow(1.0), Recorder([])], steps_per_call=4)
    with caplog.at_level(logging.WARNING, logger="steploop"):
        result = trainer.run()
    # loss at step n is 16 * 0.64**(n - 1): first below 1 at n = 8, the end of the second call
    assert (result.status, result.steps) == ("converged", 8)
    assert caplog.records == []


def test_a_call_stopped_in_graph_alone_warns_with_its_step(caplog):
    """A fused call that says its criteria fired, with no stop on the host, logs the warning
    naming the call's last step, and the run carries on."""
    strategy = Fused(lambda x: ((x - 4.0) ** 2, 2.0 * (x - 4.0)), claims_stop=True)
    trainer = sl.Trainer(strategy, [Recorder([])], steps_per_call=2)
    with caplog.at_level(logging.WARNING, logger="steploop"):
        result = trainer.run(max_steps=4)
    assert (result.status, result.steps) == ("budget", 4)
    template = (
        "the in-graph stopping criteria fired at step {} but their host check did not; the run "
        "carries on (their numbers differ in the last bit)"
    )
    assert [r.getMessage() for r in caplog.records] == [template.format(2), template.format(4)]


def test_fused_calls_end_with_their_epoch():
    """A Fusable strategy is never asked for more steps than its epoch has left; the rest of an
    epoch of 3 batches with 2 steps a call is a plain step."""
    strategy = Fused(lambda x, b: ((x - b) ** 2, 2 * (x - b)))
    trainer = sl.Trainer(strategy, data=[1.0, 2.0, 3.0], epochs=2, steps_per_call=2)
    result = trainer.run()
    assert strategy.calls == [(2, False), (2, False)]
    assert result.steps == 6
    assert trainer.history["epoch"].tolist() == [1, 1, 1, 2, 2, 2]


def test_a_put_back_batch_is_taken_by_a_plain_step_before_a_fused_call():
    """A batch put back by a stop in on_step_begin is never pending when a fused call starts."""

    class PauseFirst(sl.Callback):
        def __init__(self):
            self.paused = False

        def on_step_begin(self, trainer, step):
            if not self.paused:
                self.paused = True
                trainer.stop("pause")

    strategy = Fused(lambda x, b: ((x - b) ** 2, 2 * (x - b)))
    with pytest.warns(UserWarning, match="may stop the run"):
        trainer = sl.Trainer(
            strategy, [PauseFirst()], data=[1.0, 2.0, 3.0, 4.0, 5.0], steps_per_call=2
        )
    assert trainer.run(max_steps=1).steps == 0
    result = trainer.run(max_steps=4)
    # step 1 plain (the batch put back), steps 2-3 one call, step 4 plain (budget of 1 left)
    assert strategy.calls == [(2, False)]
    assert result.steps == 4


def test_a_fast_fused_run_releases_each_step_before_the_next_and_at_its_end():
    """With no callback reading records, a Releasing strategy in the Python loop is released
    before each next step of a call (as plain steps are, after their callbacks), after each call
    and once when the run ends."""
    strategy = Releases()
    sl.Trainer(strategy, steps_per_call=3).run(max_steps=6)
    assert strategy.released == [1, 2, 3, 4, 5, 6, 6]


def test_a_fast_fused_run_keeps_epochs_in_history_and_hooks():
    """Fused calls taken at once still fill the history's epoch column and end each epoch
    with on_epoch_end (given the trainer), at a step every(epochs=1) fires on."""
    ends = EpochEnds()
    trainer = sl.Trainer(toward_batch(), [ends], data=[1.0, 2.0], epochs=2, steps_per_call=2)
    result = trainer.run()
    assert result.stop_reason == "data exhausted after 2 epochs (4 steps)"
    assert trainer.history["epoch"].tolist() == [1, 1, 2, 2]
    assert ends.seen == [(1, 2, True), (2, 4, True)]
