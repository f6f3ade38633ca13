"""The conformance kit (``steploop.testing``) without a framework: a well-behaved strategy passes
every check, and each deliberately broken strategy fails the check that names its fault, in
bounded time, with a message saying what was expected and what was received."""

import sys
import time
from collections.abc import Mapping

import numpy as np
import pytest

import steploop as sl
from steploop.python_loop import run_steps_in_python
from steploop.strategy import FusedResult, StepOutput
from steploop.testing import (
    CHECKS,
    CheckFailed,
    CheckSkipped,
    NonFiniteCase,
    check_strategy,
    checks,
    parametrize_checks,
)


class Momentum(sl.StepStrategy):
    """Heavy-ball descent on (x - 4)**2 (or (x - batch)**2 with data): state x and velocity v."""

    reports_gradients = True

    def __init__(self, on_nonfinite="apply"):
        self.x, self.v = np.float64(0.0), np.float64(0.0)
        self.policy = on_nonfinite

    def gradients(self, g):
        return {"x": g}

    def update(self, g):
        self.v = 0.5 * self.v + g
        self.x = self.x - 0.1 * self.v

    def step(self, batch=None):
        target = 4.0 if batch is None else batch
        loss, g = (self.x - target) ** 2, 2 * (self.x - target)
        bad = not np.isfinite(loss)
        if self.policy == "apply" or not bad:
            self.update(g)
        values = {} if self.policy == "apply" else {"nonfinite": int(bad)}
        return StepOutput(loss=loss, gradients=self.gradients(g), values=values)

    def stop_after(self, step, values):
        if self.policy == "stop" and values.get("nonfinite"):
            return f"non-finite loss at step {step}"
        return None

    def variables(self):
        return {"x": np.array(self.x)}

    def save(self, prefix):
        np.savez(f"{prefix}.npz", x=self.x, v=self.v)

    def restore(self, prefix):
        with np.load(f"{prefix}.npz") as saved:
            self.x, self.v = saved["x"][()], saved["v"][()]


BAD_DATA = [1.0, 2.0, np.nan, 3.0, 2.0, 1.0]


def failures(make, **options):
    """The kit's failures on ``make`` (every check run), and the seconds it took."""
    started = time.perf_counter()
    with pytest.raises(CheckFailed) as failed:
        check_strategy(make, **options)
    return failed.value.failures, time.perf_counter() - started


def fails_with(make, name, *words, **options):
    """The kit fails ``make`` on check ``name`` (alone and among all checks), quickly, with a
    message holding the check's name and ``words``."""
    found, seconds = failures(make, **options)
    assert name in found, found
    assert seconds < 10
    with pytest.raises(CheckFailed) as failed:
        check_strategy(make, only=[name], **options)
    assert failed.value.check == name
    assert f"check {name!r} failed" in str(failed.value)
    for word in words:
        assert word in str(failed.value), str(failed.value)


@parametrize_checks(Momentum, nonfinite=NonFiniteCase(Momentum, step=3, data=BAD_DATA))
def test_momentum_passes(check):
    """The well-behaved strategy the broken ones derive from passes the check."""
    check()


@parametrize_checks(Momentum, data=[1.0, 2.0, 3.0, 2.0, 1.0, 0.5, 2.0, 3.0])
def test_momentum_with_data_passes(check):
    """Fed batches, it passes the check too."""
    check()


class NonScalarLoss(Momentum):
    def step(self, batch=None):
        output = super().step(batch)
        return StepOutput(loss=np.array([output.loss, output.loss]), gradients=output.gradients)


def test_non_scalar_loss_fails_step_contract():
    """A loss of shape (2,) fails step_contract, naming the shape."""
    fails_with(NonScalarLoss, "step_contract", "must be a scalar", "(2,)")


class Misnamed(Momentum):
    def gradients(self, g):
        return {"x:0": g}


def test_misnamed_gradients_fail_gradient_names():
    """Gradients named 'x:0' for a variable 'x' fail gradient_names, naming both."""
    fails_with(Misnamed, "gradient_names", "['x:0']", "['x']")


class Pairs(Mapping):
    """A mapping over (name, value) pairs that keeps duplicate names (a buggy container)."""

    def __init__(self, pairs):
        self.pairs = pairs

    def __getitem__(self, key):
        return dict(self.pairs)[key]

    def __iter__(self):
        return (key for key, _ in self.pairs)

    def __len__(self):
        return len(self.pairs)


class Duplicated(Momentum):
    def gradients(self, g):
        return Pairs([("x", g), ("x", g)])


def test_duplicate_gradient_names_fail_gradient_names():
    """Gradients naming 'x' twice fail gradient_names."""
    fails_with(Duplicated, "gradient_names", "more than once")


class InsistsOnData(Momentum):
    def check(self, takes_batch):
        if not takes_batch:
            raise TypeError("InsistsOnData.step needs a batch")


def test_check_refusing_the_trainers_call_fails_check_signature():
    """A check() that refuses step() without data fails check_signature."""
    fails_with(InsistsOnData, "check_signature", "takes_batch=False", "needs a batch")


class Shared(Momentum):
    """Hidden state shared by every instance: each new one starts further along."""

    made = 0

    def __init__(self):
        super().__init__()
        Shared.made += 1
        self.x = np.float64(Shared.made % 7)


def test_hidden_shared_state_fails_determinism():
    """Instances that do not start alike fail determinism, naming the first difference."""
    fails_with(Shared, "determinism", "differs first at step 1")


class ForgetsVelocity(Momentum):
    def save(self, prefix):
        np.savez(f"{prefix}.npz", x=self.x)

    def restore(self, prefix):
        with np.load(f"{prefix}.npz") as saved:
            self.x = saved["x"][()]


def test_checkpoint_without_optimizer_state_fails_checkpoint_resume():
    """A save that drops the velocity fails checkpoint_resume (and only it)."""
    found, _ = failures(ForgetsVelocity)
    assert list(found) == ["checkpoint_resume"]
    fails_with(ForgetsVelocity, "checkpoint_resume", "restored into a fresh strategy")


class ExtraUpdate(Momentum):
    """Fused, but each call makes one update more than the steps it reports."""

    ready_to_fuse = True

    def run_steps(self, count, first_step, stopper, feed, keep):
        result = run_steps_in_python(self, count, first_step, stopper, feed, keep)
        self.update(2 * (self.x - 4.0))
        return result


def test_fused_call_with_an_extra_update_fails_fused_equals_step_by_step():
    """A fused call that updates once more than it reports fails fused_equals_step_by_step."""
    fails_with(ExtraUpdate, "fused_equals_step_by_step", "steps_per_call=2", "(steps_per_call=1)")


class NoProgress(Momentum):
    """Fused, but returns no step: a Trainer trusting it would loop forever."""

    ready_to_fuse = True

    def run_steps(self, count, first_step, stopper, feed, keep):
        return FusedResult(steps=0, output=StepOutput(loss=np.zeros(0)))


class UntilDataEnds(Momentum):
    """Fused, but steps until the data ends, whatever its count and its stopper say."""

    ready_to_fuse = True

    def run_steps(self, count, first_step, stopper, feed, keep):
        steps = 0
        while feed is None or feed.next() is not None:
            self.step()
            steps += 1
        return FusedResult(steps=min(steps, count), output=StepOutput(loss=np.zeros(0)))


@pytest.mark.parametrize(
    ("broken", "says"),
    [(NoProgress, "run_steps did no step"), (UntilDataEnds, "times although")],
)
def test_fused_call_that_would_loop_forever_fails_in_bounded_time(broken, says):
    """A fused call that makes no progress (the Trainer refuses it) or ignores its count (the kit
    counts the strategy's calls instead of trusting it) fails fused_equals_step_by_step within
    seconds."""
    fails_with(broken, "fused_equals_step_by_step", says)


class ReleaseCorrupts(Momentum):
    """Releases what it holds; a release with nothing held corrupts the velocity."""

    def step(self, batch=None):
        self.held = True
        return super().step(batch)

    def release(self):
        if not getattr(self, "held", False):
            self.v = self.v + 1.0
        self.held = False


def test_release_that_breaks_the_strategy_fails_release():
    """A second release() that changes the state fails release."""
    fails_with(ReleaseCorrupts, "release", "two more release() calls")


class ResetsOnError(Momentum):
    """Releasing while an error is raised, it also throws away the velocity."""

    def release(self):
        if sys.exc_info()[0] is not None:
            self.v = np.float64(0.0)


def test_state_lost_on_a_callbacks_error_fails_survives_callback_error():
    """A strategy whose state a callback's error corrupts fails survives_callback_error only."""
    found, _ = failures(ResetsOnError)
    assert list(found) == ["survives_callback_error"]
    fails_with(ResetsOnError, "survives_callback_error", "callback's error at step 3")


class Flaky(Momentum):
    def step(self, batch=None):
        if self.x > 2.0:
            raise RuntimeError("flaky step")
        return super().step(batch)


def test_an_error_inside_the_strategy_is_the_checks_failure():
    """An exception in the strategy's step becomes the running check's CheckFailed."""
    fails_with(Flaky, "determinism", "raised RuntimeError: flaky step")


class SkipApplies(Momentum):
    """Reports the non-finite step but applies its update anyway under 'skip'."""

    def step(self, batch=None):
        output = super().step(batch)
        if output.values.get("nonfinite"):
            self.x = self.x + 1.0
        return output


def test_skip_that_applies_the_update_fails_nonfinite_skip():
    """A skipped step that changes the variables fails nonfinite_skip, naming the step."""
    bad = NonFiniteCase(SkipApplies, step=3, data=BAD_DATA)
    fails_with(Momentum, "nonfinite_skip", "step 3 changed the variables", nonfinite=bad)


def test_checks_yields_named_callables_and_skips_with_reasons():
    """checks() yields every check by name; a check that does not apply raises CheckSkipped."""
    pairs = dict(checks(Momentum))
    assert tuple(pairs) == CHECKS
    with pytest.raises(CheckSkipped, match="not Releasing"):
        pairs["release"]()
    report = check_strategy(Momentum)
    assert report["checkpoint_resume"] == "passed"
    assert report["nonfinite_stop"].startswith("skipped: no NonFiniteCase")


def test_arguments_are_checked_up_front():
    """Bad arguments fail when the checks are made, naming the argument."""
    with pytest.raises(TypeError, match="re-iterable"):
        check_strategy(Momentum, data=iter([1.0, 2.0]))
    with pytest.raises(ValueError, match="steps must be"):
        checks(Momentum, steps=1)  # at once, before any check is called
    with pytest.raises(ValueError, match="fused must hold"):
        check_strategy(Momentum, fused=(1,))
    with pytest.raises(ValueError, match="unknown checks"):
        check_strategy(Momentum, only=["speed"])
    with pytest.raises(CheckFailed, match="must return a StepStrategy"):
        check_strategy(lambda: object(), only=["determinism"])


def test_the_kit_imports_no_framework_and_lists_its_names():
    """``import steploop.testing`` brings in no framework (nor pytest); ``__all__`` is its
    public namespace."""
    import subprocess
    import types

    import steploop.testing

    code = (
        "import sys, steploop.testing;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'keras', 'torch', 'jax', 'pytest')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    public = {
        name
        for name, value in vars(steploop.testing).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(steploop.testing.__all__)
