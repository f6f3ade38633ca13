"""steps_per_call="auto": the call sizes it picks from the calls' wall time, which callbacks
declare what they need (next_sync_step too), the exact lines describe() shows, the strategies
it keeps sizes for, and the stacklevel an explicit size's warning is handed on with."""

import numpy as np
import pytest

import steploop as sl
from steploop import autofuse
from steploop.fusion import FusionPlan
from steploop.numpy import GradientDescent
from steploop.strategy import LAST
from tests.test_autofuse import FakeClock, Fused, fused_quadratic
from tests.test_epochs import Live


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(autofuse, "clock", fake)
    return fake


def timed(sizes, size, seconds_per_step, steps=None):
    """Tell ``sizes`` that a call of ``size`` did ``steps`` (all of them by default)."""
    steps = size if steps is None else steps
    sizes.took(size, steps, seconds_per_step * steps)


# -- Sizes: the target size from the calls' wall time ---------------------------------------------


def test_the_first_call_of_a_size_never_shrinks_it_the_second_does():
    """A size's first call includes compiling its loop: only a second slow call shrinks it."""
    sizes = autofuse.Sizes()
    timed(sizes, 4, autofuse.CALL_SECONDS / 2)  # two steps fill CALL_SECONDS
    assert (sizes.target, sizes.used) == (4, [4])
    timed(sizes, 4, autofuse.CALL_SECONDS / 2)
    assert (sizes.target, sizes.used) == (2, [4])


def test_a_step_longer_than_call_seconds_gives_one_step_calls():
    sizes = autofuse.Sizes()
    timed(sizes, 4, 4 * autofuse.CALL_SECONDS)
    timed(sizes, 4, 4 * autofuse.CALL_SECONDS)
    assert sizes.target == 1
    assert sizes.pick(100) == 1


def test_fast_steps_grow_the_target_to_max_size_at_once():
    """After one call, the target is the power of two of steps that fits CALL_SECONDS."""
    sizes = autofuse.Sizes()
    timed(sizes, 4, autofuse.CALL_SECONDS / 40)  # 40 steps fit: 32
    assert sizes.target == 32
    fast = autofuse.Sizes()
    timed(fast, 4, 1e-9)
    assert fast.target == autofuse.MAX_SIZE


def test_a_call_that_took_no_time_aims_at_max_size():
    sizes = autofuse.Sizes()
    sizes.took(4, 4, 0.0)
    assert sizes.target == autofuse.MAX_SIZE


def test_a_call_stopped_after_one_step_still_times_the_size():
    """A call of 4 steps stopped by a criterion after its first step: one step's time counts."""
    sizes = autofuse.Sizes()
    sizes.took(4, 1, autofuse.CALL_SECONDS / 100)  # 100 steps fit: 64
    assert sizes.target == 64


def test_a_call_of_another_size_or_of_no_step_keeps_the_target():
    sizes = autofuse.Sizes()
    sizes.took(2, 2, 1e-9)  # a call cut short: it compiled a loop, the target stays
    sizes.took(4, 0, 0.0)  # no step done: nothing to time
    assert (sizes.target, sizes.used) == (4, [2, 4])


def test_a_short_bound_takes_the_largest_power_of_two_that_fits():
    sizes = autofuse.Sizes()
    assert sizes.pick(3) == 2
    assert sizes.pick(7) == 4
    assert sizes.pick(1) == 1  # one step: a plain step
    assert sizes.pick(4) == 4


def four_sizes():
    """Sizes aiming at MAX_SIZE (not called yet) with 4, 64, 16 and 8 compiled by short calls."""
    sizes = autofuse.Sizes()
    sizes.took(4, 4, 0.0)
    assert sizes.target == autofuse.MAX_SIZE
    for bound, expected in ((100, 64), (20, 16), (10, 8)):
        assert sizes.pick(bound) == expected
        sizes.took(expected, expected, 0.0)
    assert sizes.used == [4, 64, 16, 8]
    return sizes


def test_once_the_sizes_are_spent_a_short_call_reuses_a_compiled_size():
    sizes = four_sizes()
    assert sizes.pick(40) == 16  # 32 would be a fifth loop
    assert sizes.pick(64) == 64
    assert sizes.pick(7) == 4
    assert sizes.pick(3) == 1  # no compiled size fits: a plain step
    assert sizes.pick(2) == 1
    # the target itself was never called: it would be a fifth loop, the largest compiled fits
    assert sizes.pick(autofuse.MAX_SIZE) == 64
    assert sizes.pick(5000) == 64


def spent_with_target_compiled():
    """Sizes whose target, MAX_SIZE, is compiled, with 4, 64 and 16: no size left."""
    sizes = autofuse.Sizes()
    sizes.took(4, 4, 0.0)
    sizes.took(autofuse.MAX_SIZE, autofuse.MAX_SIZE, 0.0)
    for bound, expected in ((100, 64), (20, 16)):
        assert sizes.pick(bound) == expected
        sizes.took(expected, expected, 0.0)
    assert (sizes.target, sizes.used) == (autofuse.MAX_SIZE, [4, autofuse.MAX_SIZE, 64, 16])
    return sizes


def test_a_slower_target_shrinks_to_the_largest_compiled_size_that_fits():
    sizes = spent_with_target_compiled()
    timed(sizes, autofuse.MAX_SIZE, autofuse.CALL_SECONDS / 48)  # 32 fit, not compiled
    assert sizes.target == 16
    assert len(sizes.used) == autofuse.MAX_SIZES


def test_a_target_slower_than_every_compiled_size_gives_plain_steps():
    sizes = spent_with_target_compiled()
    timed(sizes, autofuse.MAX_SIZE, autofuse.CALL_SECONDS / 3)  # 2 fit, not compiled
    assert sizes.target == 1


def test_runs_cut_short_never_use_more_than_max_sizes(clock):
    """The module promises at most MAX_SIZES call sizes (compiled loops) with a strategy."""
    clock.per_step = 1e-6
    strategy = fused_quadratic(lr=1e-4, clock=clock)
    trainer = sl.Trainer(strategy, [])
    for budget in (104, 20, 2000):  # 4 then 64 + 32 + 4; 16 + 4; then the target, 1024
        trainer.run(max_steps=budget)
    assert len(set(strategy.calls)) <= autofuse.MAX_SIZES


# -- which callbacks let "auto" fuse --------------------------------------------------------------


class InstanceDeclared(sl.Callback):
    """Has a step hook and declares needs_live_state on the instance."""

    def __init__(self):
        self.needs_live_state = False

    def on_step_end(self, trainer, record):
        pass


class RunEndOnly(sl.Callback):
    """No step hook at all."""

    def __init__(self):
        self.ends = 0

    def on_run_end(self, trainer, result):
        self.ends += 1


class BeginOnly(sl.Callback):
    """Writes on_step_begin only, declaring nothing."""

    def on_step_begin(self, trainer, step):
        pass


class QuietLogger(sl.PrintLogger):
    """A shipped callback extended without touching its step hooks."""

    def on_run_end(self, trainer, result):
        pass


class LiveAt(Live):
    """Needs live state at the steps of ``schedule`` (``tests/test_epochs.py``'s ``Live``)."""

    def __repr__(self):
        return f"LiveAt({self.schedule!r})"


def describe_line(strategy, callbacks):
    return sl.Trainer(strategy, [*callbacks, sl.MaxSteps(20)]).describe().splitlines()[1]


FUSES = (
    "steps_per_call=auto (run() fuses up to 1024 steps a call of at most 50 ms: criteria in "
    "array form, no callback needs live state at every step; iterate() takes one step a call)"
)


@pytest.mark.parametrize(
    "make",
    [
        InstanceDeclared,
        RunEndOnly,
        lambda: QuietLogger(variables=False),
        lambda: LiveAt(sl.at(2, 3)),  # live at two steps, not at step 1
        lambda: LiveAt(sl.at(1, 3)),  # not at step 2
        lambda: LiveAt(sl.at(1, 2, 4)),  # not at step 3
    ],
)
def test_callbacks_that_declare_their_needs_let_auto_fuse(clock, make):
    strategy = fused_quadratic(clock=clock)
    callback = make()
    assert describe_line(strategy, [callback]) == FUSES
    trainer = sl.Trainer(strategy, [callback, sl.MaxSteps(20)])
    assert trainer.run().steps == 20
    assert strategy.calls  # it fused


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (
            BeginOnly,
            "callbacks[0] BeginOnly has step hooks but does not declare needs_live_state (set it, "
            "True or False, on its class to let calls fuse)",
        ),
        (
            lambda: LiveAt(sl.every(1)),
            "callbacks[0] LiveAt(every(1)) needs live state at every step",
        ),
        (
            lambda: LiveAt(sl.at(1, 2, 3)),
            "callbacks[0] LiveAt(at(1, 2, 3)) needs live state at every step",
        ),
    ],
)
def test_auto_says_exactly_why_it_takes_one_step_a_call(clock, make, reason):
    strategy = fused_quadratic(clock=clock)
    assert describe_line(strategy, [make()]) == f"steps_per_call=auto → 1 step a call: {reason}"
    trainer = sl.Trainer(strategy, [make(), sl.MaxSteps(20)])
    assert trainer.steps_per_call == 1
    assert trainer.run().steps == 20
    assert strategy.calls == []


def test_a_strategy_that_is_not_fusable_runs_plain_steps_and_says_why():
    gd = GradientDescent(lambda x: ((x - 4) ** 2, 2 * (x - 4)), 0.0, learning_rate=0.25)
    trainer = sl.Trainer(gd, [sl.MaxSteps(3)])
    assert trainer.describe().splitlines()[1] == (
        "steps_per_call=auto → 1 step a call: GradientDescent is not Fusable (no multi-step call "
        "of its own)"
    )
    assert trainer.steps_per_call == 1
    assert trainer.run().steps == 3
    assert float(gd.params["x"]) == 3.5  # x halves its distance to 4 each step: 2, 3, 3.5


def test_several_clock_limits_are_listed_in_describe(clock):
    limits = [sl.TimeLimit(3600), sl.TimeLimit(7200).keyed("second")]
    line = describe_line(fused_quadratic(clock=clock), limits)
    assert line == (
        "steps_per_call=auto (run() fuses up to 1024 steps a call of at most 50 ms: criteria in "
        "array form, no callback needs live state at every step; TimeLimit(3600s), "
        "TimeLimit(7200s) checked after each call; iterate() takes one step a call)"
    )


def test_an_explicit_size_fuses_even_with_an_undeclared_callback(clock):
    """steps_per_call=K is the user's choice: callbacks that would make "auto" plain do not."""
    strategy = fused_quadratic(clock=clock)
    trainer = sl.Trainer(strategy, [BeginOnly(), sl.MaxSteps(8)], steps_per_call=4)
    assert trainer.steps_per_call == 4
    assert trainer.run().steps == 8
    assert strategy.calls == [4, 4]


def test_a_strategy_not_ready_to_fuse_takes_plain_steps(clock):
    strategy = fused_quadratic(clock=clock)
    strategy.ready_to_fuse = False
    assert sl.Trainer(strategy, [sl.MaxSteps(12)]).run().steps == 12
    assert strategy.calls == []


# -- calls that keep every step's gradients --------------------------------------------------------


class Grads(sl.Callback):
    """Reads every step's gradients (so fused calls keep them all)."""

    may_stop = False
    needs_live_state = False
    reads_gradients = True

    def __init__(self):
        self.steps = []

    def on_step_end(self, trainer, record):
        np.asarray(record.gradients["w"])
        self.steps.append(record.step)


def fused_vector(clock):
    """A Fusable strategy with one variable of ten float64 (80 bytes of gradients a step)."""
    target = np.arange(10.0)
    return Fused(
        lambda p: (float(np.sum((p["w"] - target) ** 2)), {"w": 2 * (p["w"] - target)}),
        {"w": np.zeros(10)},
        learning_rate=1e-3,
        clock=clock,
    )


def test_kept_gradients_cut_calls_by_the_variables_bytes(clock, monkeypatch):
    """KEPT_BYTES of 4 steps of 80 bytes: every call is 4 steps once the target is larger."""
    monkeypatch.setattr(autofuse, "KEPT_BYTES", 4 * 80)
    clock.per_step = 1e-6  # the target grows to MAX_SIZE after the first call
    strategy = fused_vector(clock)
    grads = Grads()
    assert sl.Trainer(strategy, [sl.MaxSteps(40), grads]).run().steps == 40
    assert strategy.calls == [4] * 10
    assert grads.steps == list(range(1, 41))


def test_gradients_larger_than_kept_bytes_give_plain_steps(clock, monkeypatch):
    monkeypatch.setattr(autofuse, "KEPT_BYTES", 8)
    clock.per_step = 1e-6
    strategy = fused_vector(clock)
    grads = Grads()
    assert sl.Trainer(strategy, [sl.MaxSteps(6), grads]).run().steps == 6
    assert strategy.calls == []
    assert grads.steps == [1, 2, 3, 4, 5, 6]


# -- probes, compiled sizes that are no power of two, calls of another size ----------------------


def fallen_to_one_step():
    """Sizes whose calls fell to one step after two slow calls of 4."""
    sizes = autofuse.Sizes()
    timed(sizes, 4, 4 * autofuse.CALL_SECONDS)
    timed(sizes, 4, 4 * autofuse.CALL_SECONDS)
    assert (sizes.target, sizes.used) == (1, [4])
    return sizes


def test_plain_steps_probe_the_smallest_size_every_probe_every_picks():
    """Once calls fell to one step, the PROBE_EVERY-th pick (and every PROBE_EVERY-th after)
    is one call of the smallest compiled size; the others are plain steps."""
    sizes = fallen_to_one_step()
    picks = [sizes.pick(100) for _ in range(2 * autofuse.PROBE_EVERY)]
    probes = [index + 1 for index, size in enumerate(picks) if size != 1]
    assert probes == [autofuse.PROBE_EVERY, 2 * autofuse.PROBE_EVERY]
    assert picks[autofuse.PROBE_EVERY - 1] == 4


def test_once_the_sizes_are_spent_a_short_call_takes_the_compiled_power_of_two_that_fits():
    """With 4, 6, 16 and 32 compiled, a bound of 7 takes 4, the largest power of two that fits,
    not the 6 of a call that was cut short."""
    sizes = autofuse.Sizes()
    sizes.took(4, 4, 0.0)  # the target grows to MAX_SIZE
    for size in (6, 16, 32):
        sizes.took(size, size, 0.0)
    assert sizes.used == [4, 6, 16, 32]
    assert sizes.pick(7) == 4


def test_a_second_call_of_a_short_size_does_not_aim_the_target():
    """Only calls of the target size (or probes) are timed: a slow second call of 4 steps,
    when the target is MAX_SIZE, leaves the target alone."""
    sizes = autofuse.Sizes()
    sizes.took(4, 4, 0.0)
    assert sizes.target == autofuse.MAX_SIZE
    timed(sizes, 4, autofuse.CALL_SECONDS / 2)  # two steps would fill CALL_SECONDS
    assert (sizes.target, sizes.used) == (autofuse.MAX_SIZE, [4])


# -- calls end with the epoch and with max_steps ---------------------------------------------------


def test_calls_end_with_each_epoch(clock):
    """Two epochs of 10 batches, fast steps: 4 (the first size), then the powers of two that fit
    what is left of the epoch (4, 2), then 8 and 2 in the second epoch."""
    from tests.test_autofuse import fused_fit

    clock.per_step = 1e-6
    strategy = fused_fit(clock=clock)
    result = sl.Trainer(strategy, data=[1.0] * 10, epochs=2).run()
    assert result.steps == 20
    assert strategy.calls == [4, 4, 2, 8, 2]


def test_a_call_ends_with_max_steps_inside_an_epoch(clock):
    """run(max_steps=3) inside an epoch of 10: one call of 2, then a plain step."""
    from tests.test_autofuse import fused_fit

    clock.per_step = 1e-6
    strategy = fused_fit(clock=clock)
    result = sl.Trainer(strategy, data=[1.0] * 10, epochs=2).run(max_steps=3)
    assert result.steps == 3
    assert strategy.calls == [2]


def test_an_explicit_size_of_two_warns_about_a_host_stopper(clock):
    """steps_per_call=2 with TimeLimit (no array form): the run may go 1 step past its stop."""
    with pytest.warns(UserWarning) as caught:
        callbacks = [sl.TimeLimit(60), sl.MaxSteps(3)]
        sl.Trainer(fused_quadratic(clock=clock), callbacks, steps_per_call=2)
    assert [str(w.message) for w in caught] == [
        "steps_per_call=2: callbacks[0] TimeLimit(60s) may stop the run but it has no array "
        "form, so they are checked after each fused chunk and the run may go up to 1 steps past "
        "the step where they ask to stop (stopping criteria with an array form, such as "
        "LossBelow or MaxSteps, stop exactly)"
    ]


class KeepsAsked(Fused):
    """Fused, recording the ``keep_gradients`` each call is given."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.asked = []

    def run_steps(self, count, first_step, stopper, feed, keep):
        self.asked.append(keep)
        return super().run_steps(count, first_step, stopper, feed, keep)


class NoGradients(KeepsAsked):
    reports_gradients = False


@pytest.mark.parametrize(("kind", "asked"), [(KeepsAsked, LAST), (NoGradients, False)])
def test_calls_ask_for_the_last_gradients_only_of_a_strategy_that_reports_them(kind, asked):
    """With no callback reading every step's gradients, a call keeps the last step's when the
    strategy reports gradients, and none when it reports none."""
    strategy = kind(lambda x: ((x - 4.0) ** 2, 2.0 * (x - 4.0)), 0.0, learning_rate=0.1)
    sl.Trainer(strategy, [sl.MaxSteps(12)], steps_per_call=4).run()
    assert strategy.asked == [asked] * 3


def test_gradients_of_no_bytes_count_as_one_byte_a_step(clock, monkeypatch):
    """A variable of no elements: each step's gradients count as one byte, so KEPT_BYTES of 8
    lets calls of 8 steps keep them all once the target is larger."""
    monkeypatch.setattr(autofuse, "KEPT_BYTES", 8)
    clock.per_step = 1e-6  # the target grows to MAX_SIZE after the first call
    strategy = Fused(
        lambda p: (float(np.sum(p["w"] ** 2)), {"w": 2 * p["w"]}),
        {"w": np.zeros(0)},
        learning_rate=0.1,
        clock=clock,
    )
    grads = Grads()
    assert sl.Trainer(strategy, [sl.MaxSteps(20), grads]).run().steps == 20
    assert strategy.calls == [4, 8, 8]
    assert grads.steps == list(range(1, 21))


class AsksForEveryStep(sl.Callback):
    """No step hook and no needs_live_state, but its next_sync_step asks for every step."""

    def next_sync_step(self, after, count):
        return after + 1


def test_a_callback_that_answers_every_step_keeps_auto_plain(clock):
    """next_sync_step is asked even when needs_live_state is False: one that answers the next
    step every time makes "auto" take one step a call."""
    strategy = fused_quadratic(clock=clock)
    assert describe_line(strategy, [AsksForEveryStep()]) == (
        "steps_per_call=auto → 1 step a call: callbacks[0] AsksForEveryStep needs live state at "
        "every step"
    )
    assert sl.Trainer(strategy, [AsksForEveryStep(), sl.MaxSteps(5)]).run().steps == 5
    assert strategy.calls == []


class HashRaises(Fused):
    """A Fusable strategy that cannot be hashed (its ``__hash__`` raises, not with TypeError)."""

    def __hash__(self):
        raise RuntimeError("not hashable")


@pytest.mark.parametrize(
    ("callbacks", "steps_per_call", "calls"),
    [([], 4, [4, 4]), ([BeginOnly()], "auto", [])],
    ids=["explicit", "auto-plain"],
)
def test_only_auto_calls_that_fuse_keep_sizes_by_strategy(clock, callbacks, steps_per_call, calls):
    """Call sizes are kept by strategy (hashed) only when "auto" fuses: an explicit size, or
    "auto" left plain, never hashes the strategy."""
    strategy = HashRaises(lambda x: ((x - 4.0) ** 2, 2.0 * (x - 4.0)), 0.0, learning_rate=0.1)
    trainer = sl.Trainer(strategy, [*callbacks, sl.MaxSteps(8)], steps_per_call=steps_per_call)
    assert trainer.run().steps == 8
    assert strategy.calls == calls


def test_an_explicit_size_asks_the_plan_to_warn_one_frame_further_up(monkeypatch):
    """CallSizes.warn(stacklevel=n) hands the plan n + 1 (its own frame), and only for an
    explicit size of more than one step."""
    asked = []
    monkeypatch.setattr(FusionPlan, "warn_host_stoppers", lambda plan, level: asked.append(level))
    callbacks = [sl.TimeLimit(60), sl.MaxSteps(3)]
    autofuse.CallSizes(2, fused_quadratic(), callbacks).warn(stacklevel=5)
    autofuse.CallSizes(1, fused_quadratic(), callbacks).warn(stacklevel=5)
    autofuse.CallSizes("auto", fused_quadratic(), callbacks).warn(stacklevel=5)
    assert asked == [6]


class Eager(Fused):
    """Fusable, but its calls would be the core's Python loop (an eager framework strategy)."""

    steps_in_python = True


def test_auto_takes_one_step_a_call_with_a_strategy_that_runs_eagerly(clock):
    """why_plain names the strategy's class; no call is fused, the run is the same."""
    strategy = fused_quadratic(clock=clock, kind=Eager)
    trainer = sl.Trainer(strategy, [sl.MaxSteps(5)])
    assert autofuse.why_plain(strategy, FusionPlan([sl.MaxSteps(5)], 1)) == (
        "Eager runs eagerly (its calls would be a Python loop)"
    )
    assert trainer.describe().splitlines()[1] == (
        "steps_per_call=auto → 1 step a call: Eager runs eagerly (its calls would be a Python "
        "loop)"
    )
    assert trainer.run().steps == 5 and strategy.calls == [] and trainer.steps_per_call == 1


def test_auto_fuses_a_strategy_that_says_it_does_not_run_eagerly(clock):
    strategy = fused_quadratic(clock=clock, kind=Eager)
    strategy.steps_in_python = False
    assert autofuse.why_plain(strategy, FusionPlan([sl.MaxSteps(5)], 1)) is None
    assert sl.Trainer(strategy, [sl.MaxSteps(5)]).run().steps == 5 and strategy.calls
