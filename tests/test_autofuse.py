"""steps_per_call="auto" (the default): it fuses only where results cannot change, says why in
describe(), and sizes its calls from their wall time with few distinct sizes."""

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import steploop as sl
from steploop import autofuse
from steploop.numpy import GradientDescent
from steploop.python_loop import run_steps_in_python
from tests.strategies import array_criteria, learning_rates, starts


class FakeClock:
    """A clock that only the steps move: each step takes ``per_step`` seconds."""

    def __init__(self, per_step=1e-4):
        self.now = 0.0
        self.per_step = per_step

    def __call__(self):
        return self.now


class Clocked(GradientDescent):
    """GradientDescent (not Fusable) whose each step moves ``clock`` by its ``per_step``."""

    def __init__(self, *args, clock=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []
        self.clock = clock

    def step(self, batch=None):
        if self.clock is not None:
            self.clock.now += self.clock.per_step
        return super().step(batch)


class Fused(Clocked):
    """GradientDescent made Fusable (its calls: the core's Python loop); it keeps each call's
    size."""

    ready_to_fuse = True

    def run_steps(self, count, first_step, stopper, feed, keep):
        self.calls.append(count)
        return run_steps_in_python(self, count, first_step, stopper, feed, keep)


def fused_quadratic(lr=0.1, start=0.0, clock=None, kind=None):
    loss = lambda x: ((x - 4.0) ** 2, 2.0 * (x - 4.0))  # noqa: E731
    return (kind or Fused)(loss, start, learning_rate=lr, clock=clock)


def fused_fit(clock=None):
    """A data-fed Fusable strategy: x moves toward each batch's target."""
    return Fused(lambda x, b: ((x - b) ** 2, 2.0 * (x - b)), 0.0, learning_rate=0.3, clock=clock)


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(autofuse, "clock", fake)
    return fake


class Seen(sl.Callback):
    """Keeps what each step's record shows (it declares that it needs no live state)."""

    may_stop = False
    needs_live_state = False

    def __init__(self):
        self.rows = []

    def on_step_end(self, trainer, record):
        self.rows.append((record.step, record.loss, float(record.gradients["x"])))


@given(
    array_criteria(),
    learning_rates,
    starts,
    st.sampled_from([1e-6, 1e-4, 3e-3, 0.02, 0.2]),
    st.one_of(st.none(), st.integers(1, 7)),
    st.booleans(),
    st.one_of(st.none(), st.integers(0, 80)),
    st.sampled_from([Fused, Clocked]),
)
def test_auto_run_equals_step_by_step(
    tmp_path_factory, criteria, lr, start, per_step, every, watch, budget, kind
):
    """Stop step, reason, history, x, a CSVLogger's file and the records a callback sees are
    those of steps_per_call=1, for random criteria, loggers, step times and budgets, with a
    Fusable strategy and one that is not (which "auto" runs one plain step a call)."""
    folder = tmp_path_factory.mktemp("logs")
    outcomes = []
    for setting in ("auto", 1):
        fake = FakeClock(per_step)
        autofuse.clock = fake
        try:
            strategy = fused_quadratic(lr, start, fake, kind)
            seen = Seen()
            log = folder / f"{setting}.csv"
            callbacks = [*criteria()] + ([sl.CSVLogger(log, every=every)] if every else [])
            callbacks += [seen] if watch else []
            trainer = sl.Trainer(strategy, callbacks, steps_per_call=setting)
            result = trainer.run(max_steps=budget)
        finally:
            autofuse.clock = autofuse.time.perf_counter
        if setting == "auto":  # a strategy that is not Fusable takes plain steps
            plain = kind is Clocked
            assert trainer.steps_per_call == (1 if plain else autofuse.MAX_SIZE)
        outcomes.append(
            (
                result.status,
                result.steps,
                result.stop_reason,
                float(strategy.params["x"]),
                trainer.history,
                float(trainer.last_record.gradients["x"]) if trainer.last_record else None,
                log.read_text() if every else None,
                seen.rows,
            )
        )
    assert outcomes[0] == outcomes[1]


@given(st.integers(0, 60), st.integers(1, 40), st.sampled_from([1e-6, 1e-3, 0.02]))
def test_auto_data_runs_equal_step_by_step(size, stop_after, per_step):
    """Exhaustion and a criterion stopping mid-call leave the data where steps_per_call=1 does."""
    runs = []
    for setting in ("auto", 1):
        fake = FakeClock(per_step)
        autofuse.clock = fake
        try:
            strategy = fused_fit(fake)
            data = [float(i % 7) for i in range(size)]
            trainer = sl.Trainer(
                strategy, [sl.MaxSteps(stop_after)], data=data, steps_per_call=setting
            )
            first = trainer.run()
            trainer.callbacks[0].n = stop_after + 9
            second = trainer.run()
        finally:
            autofuse.clock = autofuse.time.perf_counter
        runs.append(
            (
                first.steps,
                first.status,
                second.steps,
                second.status,
                trainer.history,
                float(strategy.params["x"]),
            )
        )
    assert runs[0] == runs[1]


def test_auto_fuses_array_criteria_and_loggers_and_says_so(clock, tmp_path):
    strategy = fused_quadratic(clock=clock)
    trainer = sl.Trainer(
        strategy, [sl.LossBelow(1e-12) | sl.MaxSteps(1000), sl.CSVLogger(tmp_path / "a.csv")]
    )
    assert trainer.steps_per_call == autofuse.MAX_SIZE
    assert trainer.describe().splitlines()[1] == (
        "steps_per_call=auto (run() fuses up to 1024 steps a call of at most 50 ms: criteria "
        "in array form, no callback needs live state at every step; iterate() takes one step "
        "a call)"
    )
    result = trainer.run()
    assert (result.steps, result.status) == (70, "converged")
    assert strategy.calls  # it fused
    assert "sizes so far: [4, 256]" in trainer.describe()


class StopAt(sl.Callback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, record):
        if record.step == self.step:
            trainer.stop(f"asked at step {self.step}")


class Undeclared(sl.Callback):
    """Has step hooks and says nothing about live state."""

    def on_step_end(self, trainer, record):
        pass


class Declared(Undeclared):
    needs_live_state = False


class OwnLogger(sl.PrintLogger):
    """A shipped callback whose step hook is overridden here, declaring nothing."""

    def on_step_end(self, trainer, record):
        pass


@pytest.mark.parametrize(
    ("callback", "why"),
    [
        (StopAt(3), "callbacks[0] StopAt may stop the run from the host"),
        (sl.Every(sl.PrintLogger(), 1), "needs live state at every step"),
        (
            sl.EarlyStopping(2, restore_best_weights=True) | sl.MaxSteps(9),
            "needs live state at every step",
        ),
        (Undeclared(), "has step hooks but does not declare needs_live_state"),
        (sl.Every(Undeclared(), 5), "has step hooks but does not declare needs_live_state"),
        (OwnLogger(variables=False), "has step hooks but does not declare needs_live_state"),
    ],
)
def test_auto_takes_one_step_a_call_when_fusing_could_change_results(clock, callback, why):
    """Silently (no warning): one step a call, the reason in describe(), results unchanged."""
    strategy = fused_quadratic(clock=clock)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trainer = sl.Trainer(strategy, [callback, sl.MaxSteps(20)])
    line = trainer.describe().splitlines()[1]
    assert line.startswith("steps_per_call=auto → 1 step a call: ") and why in line
    assert trainer.steps_per_call == 1
    trainer.run()
    assert strategy.calls == []


def test_a_host_stopper_stops_at_its_step_under_auto(clock):
    trainer = sl.Trainer(fused_quadratic(clock=clock), [StopAt(3), sl.MaxSteps(50)])
    result = trainer.run()
    assert (result.steps, result.stop_reason) == (3, "asked at step 3")


def test_a_declared_callback_and_a_time_limit_let_auto_fuse(clock):
    strategy = fused_quadratic(clock=clock)
    trainer = sl.Trainer(strategy, [Declared(), sl.TimeLimit(3600) | sl.MaxSteps(300)])
    assert "TimeLimit(3600s) | MaxSteps(300) checked after each call" in trainer.describe()
    assert trainer.run().steps == 300 and strategy.calls


def test_not_fusable_and_explicit_sizes(clock):
    assert sl.Trainer(fused_quadratic(), steps_per_call=1).describe().splitlines()[1] == (
        "steps_per_call=1"
    )
    plain = GradientDescent(lambda x: (x * x, 2 * x), 1.0, learning_rate=0.1)
    assert "GradientDescent is not Fusable" in sl.Trainer(plain, [sl.MaxSteps(3)]).describe()


def test_iterate_takes_one_step_a_call_under_auto(clock):
    """The body of an iterate() loop may read anything: records have live variables."""
    strategy = fused_quadratic(clock=clock)
    trainer = sl.Trainer(strategy, [sl.MaxSteps(30)])
    xs = [float(record.variables["x"]) for record in trainer.iterate(max_steps=10)]
    assert strategy.calls == [] and len(xs) == 10
    trainer.run(max_steps=20)
    assert strategy.calls


@pytest.mark.parametrize(
    ("per_step", "first_calls"),
    [
        (1e-4, [4, 256, 256]),  # 256 steps of 0.1 ms: 25.6 ms a call
        (1e-6, [4, 1024, 1024]),  # capped at MAX_SIZE
        (0.02, [4, 4, 2, 2]),  # the first call of a size compiles: only the second shrinks
    ],
)
def test_call_sizes_follow_the_time_per_step(clock, per_step, first_calls):
    clock.per_step = per_step
    strategy = fused_quadratic(lr=1e-4, clock=clock)
    sl.Trainer(strategy, [sl.MaxSteps(4000)]).run()
    assert strategy.calls[: len(first_calls)] == first_calls
    assert len(set(strategy.calls)) == len(set(first_calls))
    assert all(size * per_step <= autofuse.CALL_SECONDS for size in strategy.calls[2:])


def test_slow_steps_make_calls_plain_with_a_probe_that_brings_fusing_back(clock):
    """A step longer than CALL_SECONDS: plain steps from then on, but one call of the smallest
    size every PROBE_EVERY steps times them again; faster steps fuse again (a single slow call,
    a compile say, does not leave the strategy unfused for good)."""
    clock.per_step = 0.2
    strategy = fused_quadratic(lr=1e-4, clock=clock)
    trainer = sl.Trainer(strategy, [sl.MaxSteps(10**6)])
    probe_every = autofuse.PROBE_EVERY
    trainer.run(max_steps=8 + 2 * (probe_every - 1 + 4))
    # two calls of 4 (the first compiles), then PROBE_EVERY - 1 plain steps and a probe of 4,
    # twice: the probes find the steps still slow
    assert strategy.calls == [4, 4, 4, 4]
    clock.per_step = 1e-4
    trainer.run(max_steps=probe_every - 1 + 4 + 1024)
    assert strategy.calls[4:] == [4, 256, 256, 256, 256]  # after PROBE_EVERY - 1 plain steps
    reference = fused_quadratic(lr=1e-4)
    sl.Trainer(reference, [sl.MaxSteps(10**6)], steps_per_call=1).run(max_steps=trainer.step)
    assert float(strategy.params["x"]) == float(reference.params["x"])


@given(
    st.lists(st.integers(0, 3000), min_size=1, max_size=6),
    st.sampled_from([1e-6, 1e-4, 3e-3]),
    st.integers(1, 200),
)
def test_budgets_and_live_steps_use_few_sizes(budgets, per_step, save_every):
    """run(max_steps=) budgets and a callback's live steps cut calls; still at most MAX_SIZES
    distinct sizes, each call within the budget, and the same x as step by step."""
    fake = FakeClock(per_step)
    autofuse.clock = fake
    try:
        strategy = fused_quadratic(lr=1e-4, clock=fake)
        live = Live(save_every)
        trainer = sl.Trainer(strategy, [live])
        for budget in budgets:
            trainer.run(max_steps=budget)
    finally:
        autofuse.clock = autofuse.time.perf_counter
    reference = fused_quadratic(lr=1e-4)
    sl.Trainer(reference, [Live(save_every)], steps_per_call=1).run(max_steps=sum(budgets))
    assert float(strategy.params["x"]) == float(reference.params["x"])
    assert len(set(strategy.calls)) <= autofuse.MAX_SIZES
    assert live.seen == [s for s in range(save_every, sum(budgets) + 1, save_every)]


class Live(sl.Callback):
    """Reads the variables every ``n`` steps (so fused calls end there)."""

    may_stop = False
    needs_live_state = True

    def __init__(self, n):
        self.schedule = sl.every(n)
        self.seen = []

    def on_step_end(self, trainer, record):
        if self.schedule.fires(record.step):
            float(record.variables["x"])
            self.seen.append(record.step)


def test_large_gradients_cut_the_calls_that_keep_every_step(clock, monkeypatch):
    """A call that keeps every step's gradients (a callback reads them) holds at most KEPT_BYTES
    of them; one that keeps the last step's alone is not cut."""
    monkeypatch.setattr(autofuse, "KEPT_BYTES", 8 * 10)  # ten steps of one float64
    clock.per_step = 1e-6
    strategy = fused_quadratic(lr=1e-4, clock=clock)
    seen = Seen()
    sl.Trainer(strategy, [sl.MaxSteps(100), seen]).run()
    assert max(strategy.calls) == 8
    plain = fused_quadratic(lr=1e-4)
    expected = Seen()
    sl.Trainer(plain, [sl.MaxSteps(100), expected], steps_per_call=1).run()
    assert seen.rows == expected.rows
    alone = fused_quadratic(lr=1e-4, clock=clock)
    sl.Trainer(alone, [sl.MaxSteps(3000)]).run()
    assert max(alone.calls) == autofuse.MAX_SIZE


def test_a_call_keeps_its_last_steps_gradients_only(clock):
    """No callback reads every step's gradients: the last record has them (as step by step),
    an earlier step's record says they were not kept."""
    strategy = fused_quadratic(lr=0.01, clock=clock)
    trainer = sl.Trainer(strategy, [sl.MaxSteps(20)])
    trainer.run()
    assert strategy.calls == [4, 256]  # the second ends at step 20, inside the call
    plain = sl.Trainer(fused_quadratic(lr=0.01), [sl.MaxSteps(20)], steps_per_call=1)
    plain.run()
    assert trainer.last_record.step == 20
    assert trainer.last_record.gradients == plain.last_record.gradients


class Tries(sl.Callback):
    """Reads each step's gradients although it says it does not (``reads_gradients=False``)."""

    may_stop = False
    needs_live_state = False
    reads_gradients = False

    def __init__(self):
        self.rows = []

    def on_step_end(self, trainer, record):
        try:
            self.rows.append((record.step, float(record.gradients["x"])))
        except RuntimeError as error:
            self.rows.append((record.step, str(error)))


def test_a_call_of_k_steps_hands_the_last_steps_gradients_alone():
    strategy = fused_quadratic(lr=0.01)
    tries = Tries()
    sl.Trainer(strategy, [sl.MaxSteps(4), tries], steps_per_call=4).run()
    assert strategy.calls == [4]
    plain = Seen()
    sl.Trainer(fused_quadratic(lr=0.01), [sl.MaxSteps(4), plain], steps_per_call=1).run()
    assert tries.rows[3] == (4, plain.rows[3][2])
    for step, message in tries.rows[:3]:
        assert message == (
            f"StepRecord.gradients of step {step} was not kept: step {step} ran inside a fused "
            "call of 4 steps (steps_per_call=4), and fused calls return the last step's "
            "gradients, and every step's only for callbacks with reads_gradients = True (or for "
            "iterate())"
        )


def test_steps_per_call_accepts_auto_explicitly():
    trainer = sl.Trainer(fused_quadratic(), [sl.MaxSteps(5)], steps_per_call="auto")
    assert trainer.run().steps == 5
    assert np.isfinite(trainer.last_record.loss)


def test_a_new_trainer_on_the_same_strategy_starts_at_the_size_found(clock):
    """The sizes belong to the strategy: a second Trainer's first call is the size the first
    Trainer settled on (no new loop to compile), and the result equals step by step."""
    clock.per_step = 1e-4  # 256 steps a call (25.6 ms)
    strategy = fused_quadratic(lr=1e-4, clock=clock)
    sl.Trainer(strategy, [sl.MaxSteps(600)]).run()
    assert strategy.calls[:2] == [4, 256]
    strategy.calls.clear()
    second = sl.Trainer(strategy, [sl.MaxSteps(1200)])
    second.run()
    assert strategy.calls[0] == 256 and set(strategy.calls) <= {4, 256, 64, 32, 16, 8, 2}
    reference = fused_quadratic(lr=1e-4)
    for steps in (600, 1200):  # two Trainers on one strategy, step by step
        sl.Trainer(reference, [sl.MaxSteps(steps)], steps_per_call=1).run()
    assert float(strategy.params["x"]) == float(reference.params["x"])
    other = fused_quadratic(lr=1e-4, clock=clock)  # another strategy starts afresh
    sl.Trainer(other, [sl.MaxSteps(10)]).run()
    assert other.calls[0] == 4
