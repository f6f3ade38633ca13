"""The core's Python loop of steps (``run_steps_in_python``, ``steps_per_call=K`` on a strategy
that is not ``Fusable``) gives what plain steps give, also for a strategy whose ``to_host`` takes
only its own values, and one that keeps resources for its step's callbacks (``release``)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import steploop as sl


class Box:
    """A framework's value: only its strategy's ``to_host`` opens it."""

    def __init__(self, value):
        self.value = value


class Boxed(sl.StepStrategy):
    """Halves x's distance to 4; reports its loss, gradient and a value in ``Box``es."""

    reports_gradients = True

    def __init__(self):
        self.x = 0.0

    def step(self, batch=None):
        loss, gradient = (self.x - 4.0) ** 2, 2.0 * (self.x - 4.0)
        self.x -= 0.25 * gradient
        return sl.StepOutput(
            loss=Box(loss), gradients={"x": Box(gradient)}, values={"x": Box(self.x)}
        )

    def to_host(self, tree):
        if isinstance(tree, dict):
            return {key: self.to_host(value) for key, value in tree.items()}
        if not isinstance(tree, Box):
            raise TypeError(f"Boxed.to_host takes a Box, got {type(tree).__name__}")
        return np.asarray(tree.value)

    def variables(self):
        return {"x": np.asarray(self.x)}


@pytest.mark.parametrize("steps_per_call", [1, 4])
def test_a_to_host_that_takes_only_its_own_values_is_not_given_numpy_arrays(steps_per_call):
    strategy = Boxed()
    trainer = sl.Trainer(strategy, [sl.MaxSteps(6)], steps_per_call=steps_per_call)
    result = trainer.run()
    assert (result.steps, result.status) == (6, "budget")
    assert trainer.history["loss"].tolist() == [16.0, 4.0, 1.0, 0.25, 0.0625, 0.015625]
    assert trainer.history["x"].tolist() == [2.0, 3.0, 3.5, 3.75, 3.875, 3.9375]
    assert float(trainer.last_record.gradients["x"]) == -0.25


class Tapes(sl.StepStrategy):
    """Keeps a resource from each step until ``release``; counts how many are held at once."""

    def __init__(self):
        self.held = 0
        self.most = 0
        self.released = 0

    def step(self, batch=None):
        self.held += 1
        self.most = max(self.most, self.held)
        return sl.StepOutput(loss=1.0)

    def release(self):
        self.released += self.held
        self.held = 0


@pytest.mark.parametrize("steps_per_call", [1, 8])
def test_a_python_loop_releases_each_step_before_the_next_as_plain_steps_do(steps_per_call):
    strategy = Tapes()
    sl.Trainer(strategy, [sl.MaxSteps(20)], steps_per_call=steps_per_call).run()
    assert strategy.most == 1  # never two steps' resources at once
    assert strategy.released == 20 and strategy.held == 0


class Reports(sl.StepStrategy):
    """Loss k at step k; reports the values ``names(k)`` names, each k."""

    def __init__(self, names):
        self.k = 0
        self.names = names

    def step(self, batch=None):
        self.k += 1
        return sl.StepOutput(
            loss=float(self.k), values={n: float(self.k) for n in self.names(self.k)}
        )


@pytest.mark.parametrize(
    "names, told",
    [
        (lambda k: ["a"] if k < 3 else ["a", "b"], "['a', 'b'] at step 3, but ['a'] at step 1"),
        (lambda k: [] if k < 3 else ["a"], "['a'] at step 3, but [] at step 1"),
        (lambda k: ["a", "b"] if k < 3 else ["b"], "['b'] at step 3, but ['a', 'b'] at step 1"),
    ],
)
def test_value_names_that_change_inside_a_call_in_python_are_refused_at_their_step(names, told):
    """One call stacks one set of names: a step that changes them raises, naming both steps; the
    steps before it are recorded. Step by step, every name is recorded as it comes."""
    plain = sl.Trainer(Reports(names), [sl.MaxSteps(4)], steps_per_call=1)
    plain.run()
    assert plain.history["loss"].tolist() == [1.0, 2.0, 3.0, 4.0]
    trainer = sl.Trainer(Reports(names), [sl.MaxSteps(4)], steps_per_call=4)
    with pytest.raises(ValueError) as caught:
        trainer.run()
    assert str(caught.value) == (
        f"Reports.step returned values named {told}, the first step of its fused call: the "
        "steps of one call report the same names (steps_per_call=1 records names that change "
        "from step to step)"
    )
    assert trainer.step == 2 and trainer.history["loss"].tolist() == [1.0, 2.0]
    assert trainer.result.status == "error"


class StopsAt(sl.StepStrategy):
    """Loss k at step k; ``stop_after`` asks to stop after step ``last`` and counts its
    questions."""

    def __init__(self, last):
        self.k = 0
        self.last = last
        self.asked = []

    def step(self, batch=None):
        self.k += 1
        return sl.StepOutput(loss=float(self.k))

    def stop_after(self, step, values):
        self.asked.append(step)
        return f"stop asked after step {step}" if step == self.last else None


class Seen(sl.Callback):
    def __init__(self):
        self.steps = []

    def on_step_end(self, trainer, record):
        self.steps.append(record.step)


@pytest.mark.parametrize("steps_per_call", [1, 4, 16])
@pytest.mark.parametrize("watched", [False, True])
def test_a_strategy_is_asked_stop_after_once_a_step_in_a_call_in_python(steps_per_call, watched):
    """The call's loop asks at each step to know where to end; the Trainer does not ask again,
    whether it hands the records to callbacks or takes the call's rows at once."""
    strategy = StopsAt(last=6)
    callbacks = [sl.MaxSteps(50), *([Seen()] if watched else [])]
    trainer = sl.Trainer(strategy, callbacks, steps_per_call=steps_per_call)
    result = trainer.run()
    assert strategy.asked == [1, 2, 3, 4, 5, 6]
    assert (result.steps, result.status, result.stop_reason) == (
        6,
        "nonfinite",
        "stop asked after step 6",
    )
    if watched:
        assert trainer.callbacks[1].steps == [1, 2, 3, 4, 5, 6]


class Counts(sl.StoppingCriterion):
    """Counts the steps it saw (array form, one number of state); never met."""

    array_form = True

    def init(self):
        return (0.0,)

    def test(self, ops, state, q):
        return False, (state[0] + 1,)


class FailsAt(sl.StoppingCriterion):
    """Raises at step ``n``; before it, counts like ``Counts``."""

    array_form = True

    def __init__(self, n):
        super().__init__()
        self.n = n

    def init(self):
        return (0.0,)

    def test(self, ops, state, q):
        if q.step == self.n:
            raise RuntimeError(f"FailsAt raised at step {q.step}")
        return False, (state[0] + 1,)


@pytest.mark.parametrize("steps_per_call", [1, 4, 8])
def test_criteria_before_one_that_raises_keep_its_step_as_step_by_step(steps_per_call):
    """The criteria before the raising one took its step, those from it on did not; the
    step stays recorded and the run fails with the criterion's error."""
    before, failing, after = Counts(), FailsAt(3), Counts().keyed("after")
    trainer = sl.Trainer(
        StopsAt(last=None),
        [sl.MaxSteps(10), before, failing, after],
        steps_per_call=steps_per_call,
    )
    with pytest.raises(RuntimeError, match="FailsAt raised at step 3"):
        trainer.run()
    assert trainer.step == 3 and trainer.history["loss"].tolist() == [1.0, 2.0, 3.0]
    assert (before.state(), failing.state(), after.state()) == ((3.0,), (2.0,), (2.0,))


class Interrupted(sl.StepStrategy):
    """Loss k at step k; during step ``at`` it asks its Trainer to stop (as a signal handler
    would)."""

    def __init__(self, at):
        self.k = 0
        self.at = at
        self.trainer = None

    def step(self, batch=None):
        self.k += 1
        if self.k == self.at:
            self.trainer.stop("interrupted by the user")
        return sl.StepOutput(loss=float(self.k))


@pytest.mark.parametrize("steps_per_call", [1, 4, "auto"])
def test_a_stop_asked_during_a_step_ends_the_run_after_that_step(steps_per_call):
    """Step by step or in a call in Python: the run ends after the step the stop was asked
    during, and its reason is the one asked, with nothing added."""
    strategy = Interrupted(at=3)
    trainer = strategy.trainer = sl.Trainer(
        strategy, [sl.MaxSteps(10)], steps_per_call=steps_per_call
    )
    result = trainer.run()
    assert (result.steps, result.status, result.stop_reason) == (
        3,
        "stopped",
        "interrupted by the user",
    )
    assert trainer.run().steps == 10  # the next run goes on to MaxSteps(10)


@pytest.mark.parametrize("steps_per_call", [1, 4])
def test_a_stop_asked_by_the_data_as_it_yields_runs_no_step_for_that_batch(steps_per_call):
    """The batch the data yielded while asking to stop is not taken: the next run starts
    with it, in a call in Python as step by step."""
    seen = []

    class Batches(sl.StepStrategy):
        def step(self, batch):
            seen.append(batch)
            return sl.StepOutput(loss=float(batch))

    def data():
        for batch in range(1, 9):
            if batch == 3 and trainer.step < 3:
                trainer.stop("the data asked to stop")
            yield batch

    trainer = sl.Trainer(Batches(), [sl.MaxSteps(5)], data=data(), steps_per_call=steps_per_call)
    result = trainer.run()
    assert (result.steps, result.stop_reason) == (2, "the data asked to stop")
    assert trainer.run().steps == 5
    assert seen == [1, 2, 3, 4, 5]


def test_a_stop_asked_during_a_compiled_call_names_the_call_it_took_effect_after():
    """A call that ran to its end past the stop (compiled) names its steps; one that ended where
    the stop takes effect (`stop_honoured`), or a call of one step, adds nothing."""
    from steploop.readback import FusedCall
    from steploop.records import Stop
    from steploop.strategy import FusedResult, StepOutput

    strategy = StopsAt(last=None)
    compiled = FusedCall(strategy, FusedResult(3, StepOutput(loss=np.zeros(3))), 5, False, 3)
    assert compiled.asked_during(Stop("x")).reason == (
        "x (asked during the fused call of steps 5-7; took effect after step 7, its last step)"
    )
    one = FusedCall(strategy, FusedResult(1, StepOutput(loss=np.zeros(1))), 5, False, 3)
    honoured = FusedCall(
        strategy, FusedResult(3, StepOutput(loss=np.zeros(3)), stop_honoured=True), 5, False, 3
    )
    assert one.asked_during(Stop("x")) == honoured.asked_during(Stop("x")) == Stop("x")


class Differs(sl.StepStrategy):
    """Loss k at step k, with the gradients and target gradients ``reported(k)`` names."""

    reports_gradients = True

    def __init__(self, reported):
        self.k = 0
        self.reported = reported

    def step(self, batch=None):
        self.k += 1
        gradients, targets = self.reported(self.k)
        return sl.StepOutput(
            loss=float(self.k),
            gradients={name: float(self.k) for name in gradients},
            target_gradients={t: {"w": 1.0} for t in targets} or None,
        )


@pytest.mark.parametrize(
    "reported, told",
    [
        (
            lambda k: (["w"], ["aux"] if k == 2 else []),
            "target gradients for ['aux'] at step 2, but [] at step 1",
        ),
        (
            lambda k: (["w"], [] if k == 2 else ["aux"]),
            "target gradients for [] at step 2, but ['aux'] at step 1",
        ),
        (lambda k: (["w", "b"] if k == 2 else ["w"], []), "gradients of ['b', 'w'] at step 2"),
    ],
)
def test_gradients_kept_every_step_that_change_inside_a_call_in_python_are_refused(reported, told):
    """iterate() keeps every step's gradients: a step whose gradient or target names differ
    from the call's first step's raises at that step, after the steps before it."""
    plain = sl.Trainer(Differs(reported), [sl.MaxSteps(3)], steps_per_call=1)
    assert [r.step for r in plain.iterate()] == [1, 2, 3]
    trainer = sl.Trainer(Differs(reported), [sl.MaxSteps(3)], steps_per_call=3)
    seen = []
    with pytest.raises(ValueError) as caught:
        for record in trainer.iterate():
            seen.append(record.step)
    assert str(caught.value).startswith(f"Differs.step returned {told}")
    assert str(caught.value).endswith(
        "the first step of its fused call: the steps of one call report the same names "
        "(steps_per_call=1 records names that change from step to step)"
    )
    assert seen == [1] and trainer.step == 1


@settings(deadline=None)
@given(
    steps_per_call=st.integers(2, 8),
    interrupt=st.integers(1, 14),
    stop_itself=st.one_of(st.none(), st.integers(1, 14)),
    budget=st.integers(1, 12),
    data=st.booleans(),
)
def test_calls_in_python_end_as_step_by_step_runs_do(
    steps_per_call, interrupt, stop_itself, budget, data
):
    """A stop asked during a step, a strategy that stops itself and a step budget, with or
    without data: calls in Python give the steps, reason, history and next run of plain steps."""

    def run(k):
        strategy = Interrupted(at=interrupt)
        if stop_itself is not None:
            strategy.stop_after = lambda step, values: (
                f"stops itself after step {step}" if step == stop_itself else None
            )
        batches = [float(i) for i in range(1, 40)] if data else None
        trainer = strategy.trainer = sl.Trainer(
            strategy, [sl.MaxSteps(budget)], data=batches, steps_per_call=k
        )
        first = trainer.run()
        second = trainer.run(max_steps=3)
        return (
            (first.steps, first.status, first.stop_reason),
            (second.steps, second.status, second.stop_reason),
            trainer.history["loss"].tolist(),
            strategy.k,
        )

    assert run(steps_per_call) == run(1)


class Events(sl.Callback):
    """Records the hooks it sees."""

    def __init__(self):
        self.events = []

    def on_step_begin(self, trainer, step):
        self.events.append(("begin", step))

    def on_step_end(self, trainer, record):
        self.events.append(("end", record.step))

    def on_error(self, trainer, error):
        self.events.append(("error", str(error)))

    def on_run_end(self, trainer, result):
        self.events.append(("run_end", result.status, result.stop_reason))


class RaisesAfter(StopsAt):
    """``stop_after`` raises at step ``last``."""

    def stop_after(self, step, values):
        self.asked.append(step)
        if step == self.last:
            raise RuntimeError(f"stop_after raised at step {step}")
        return None


@pytest.mark.parametrize("steps_per_call", [1, 4])
@pytest.mark.parametrize("watched", [False, True])
def test_a_stop_after_that_raises_in_a_call_in_python_fails_as_step_by_step(
    steps_per_call, watched
):
    """Asked before the criteria, as a plain step's commit asks: the step is recorded, no
    criterion and no ``on_step_end`` take it, and no ``on_step_begin`` follows it."""
    strategy, counts, events = RaisesAfter(last=3), Counts(), Events()
    callbacks = [counts, sl.MaxSteps(10), *([events] if watched else [])]
    trainer = sl.Trainer(strategy, callbacks, steps_per_call=steps_per_call)
    with pytest.raises(RuntimeError, match="stop_after raised at step 3"):
        trainer.run()
    assert (trainer.step, trainer.history["loss"].tolist()) == (3, [1.0, 2.0, 3.0])
    assert counts.state() == (2.0,) and strategy.asked == [1, 2, 3]
    if watched:
        assert events.events == [
            ("begin", 1), ("end", 1), ("begin", 2), ("end", 2), ("begin", 3),
            ("error", "stop_after raised at step 3"),
            ("run_end", "error", "RuntimeError after step 3: stop_after raised at step 3"),
        ]  # fmt: skip


@pytest.mark.parametrize("steps_per_call", [1, 4])
def test_no_step_begins_for_the_batch_the_data_yielded_as_it_asked_to_stop(steps_per_call):
    trainer = None

    class Batches(sl.StepStrategy):
        def step(self, batch):
            return sl.StepOutput(loss=float(batch))

    def data():
        for batch in range(1, 9):
            if batch == 3:
                trainer.stop("the data asked to stop")
            yield batch

    events = Events()
    trainer = sl.Trainer(
        Batches(), [sl.MaxSteps(5), events], data=data(), steps_per_call=steps_per_call
    )
    trainer.run()
    assert events.events == [
        ("begin", 1), ("end", 1), ("begin", 2), ("end", 2),
        ("run_end", "stopped", "the data asked to stop"),
    ]  # fmt: skip
