"""EarlyStopping's baseline, warm-up, auto mode and restored best weights, at exact steps."""

import re

import numpy as np
import pytest

import steploop as sl
from steploop.numpy import GradientDescent
from tests.scripted import Scripted


def run(losses, *criteria, steps_per_call=1):
    trainer = sl.Trainer(Scripted(losses), list(criteria), steps_per_call=steps_per_call)
    return trainer.run(max_steps=len(losses))


@pytest.mark.parametrize("k", [1, 4])
def test_baseline_never_beaten_stops_after_patience_even_while_improving(k):
    """Improving below the baseline does not count: the run stops after `patience` steps."""
    losses = [10.0, 9.0, 8.0, 7.0, 6.0, 5.5]
    assert run(losses, sl.EarlyStopping(3), steps_per_call=k).status == "budget"
    result = run(losses, sl.EarlyStopping(3, baseline=5.0), steps_per_call=k)
    assert (result.steps, result.status) == (3, "converged")
    assert result.stop_reason == (
        "EarlyStopping(patience=3, min_delta=0, monitor='loss', mode='min', baseline=5): loss "
        "did not improve by more than 0 for 3 step(s) (best 8 at step 3, stopped at step 3; "
        "baseline 5 never beaten)"
    )


@pytest.mark.parametrize("k", [1, 4])
def test_once_the_baseline_is_beaten_patience_is_ordinary(k):
    """The step that beats the baseline resets the count; then ordinary patience."""
    early = sl.EarlyStopping(2, baseline=5.0)
    assert run([10, 4, 4, 4, 4, 3], early, steps_per_call=k).steps == 4
    early = sl.EarlyStopping(3, baseline=5.0)
    assert run([10, 9, 4, 4, 4, 4, 1], early, steps_per_call=k).steps == 6


@pytest.mark.parametrize("k", [1, 4])
def test_with_a_warm_up_the_baseline_once_beaten_stays_beaten(k):
    """Baseline and warm-up together: after step 4 beat the baseline, a later step that beats
    the baseline but not the best is no improvement, so patience runs out at step 7."""
    losses = [0.1, 0.1, 0.1, 0.5, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]
    early = sl.EarlyStopping(3, baseline=1.0, start_from=4)
    result = run(losses, early, steps_per_call=k)
    assert (result.steps, result.status) == (7, "converged")
    assert early.state() == (0.5, 4.0, 3.0, 1.0)  # best, its step, the count, beaten


def test_a_subclass_checks_through_its_bases_in_their_order():
    """EarlyStopping's own check takes the base's directly; a subclass with another criterion
    among its bases still goes through that base's check at every step."""
    calls = []

    class Audit(sl.StoppingCriterion):
        def check(self, trainer, record):
            calls.append(record.step)
            return super().check(trainer, record)

    class Audited(sl.EarlyStopping, Audit):
        pass

    result = run([1.0] * 6, Audited(2))
    assert (result.steps, result.status, calls) == (3, "converged", [1, 2, 3])


def test_baseline_in_max_mode_and_with_min_delta():
    """Beating the baseline means by more than min_delta, in the monitored direction."""
    values = {"accuracy": [0.5, 0.905, 0.905, 0.95, 0.95]}

    def steps(**kwargs):
        early = sl.EarlyStopping(3, monitor="accuracy", baseline=0.9, **kwargs)
        return sl.Trainer(Scripted([1.0] * 5, values=values), [early]).run(max_steps=5).steps

    assert steps(min_delta=0.01) == 3  # 0.905 does not beat 0.9 by more than 0.01
    assert steps() == 5  # beaten at step 2, improved at 4: the budget ends the run


@pytest.mark.parametrize("k", [1, 3])
def test_steps_before_start_from_neither_improve_nor_count(k):
    """Warm-up steps are ignored: a flat run stops `patience` steps after start_from."""
    assert run([1.0] * 10, sl.EarlyStopping(2), steps_per_call=k).steps == 3
    assert run([1.0] * 10, sl.EarlyStopping(2, start_from=4), steps_per_call=k).steps == 6
    early_best = [0.0, 5.0, 4.0, 3.0, 2.0, 1.0]  # a warm-up value no later step can beat
    assert run(early_best, sl.EarlyStopping(2), steps_per_call=k).steps == 3
    assert run(early_best, sl.EarlyStopping(2, start_from=2), steps_per_call=k).status == "budget"


@pytest.mark.parametrize(
    ("monitor", "mode"),
    [
        ("loss", "min"),
        ("val_loss", "min"),
        ("accuracy", "max"),
        ("val_acc", "max"),
        ("AUC", "max"),
        ("precision_at_1", "max"),
        ("recall", "max"),
        ("f1_score", "max"),
        ("error", "min"),
    ],
)
def test_auto_mode_follows_the_monitored_name(monitor, mode):
    """mode='auto' maximises names with acc/auc/precision/recall/f1, minimises the rest."""
    assert sl.EarlyStopping(2, monitor=monitor).mode == mode
    assert sl.EarlyStopping(2, monitor=monitor, mode="min").mode == "min"


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: sl.EarlyStopping(2, baseline=float("nan")), ValueError,
         "EarlyStopping baseline must be finite, got nan"),
        (lambda: sl.EarlyStopping(2, baseline="1"), TypeError,
         "EarlyStopping baseline must be a real number, got '1' (str)"),
        (lambda: sl.EarlyStopping(2, start_from=-1), ValueError,
         "EarlyStopping start_from must be an int >= 0, got -1"),
        (lambda: sl.EarlyStopping(2, mode="up"), ValueError,
         "EarlyStopping mode must be 'min' or 'max' (or 'auto': from the monitored name), "
         "got 'up'"),
        (lambda: sl.EarlyStopping(2, restore_best_weights=1), TypeError,
         "EarlyStopping restore_best_weights must be a bool, got 1 (int)"),
    ],
)
def test_bad_arguments_are_named(call, error, message):
    """Each bad argument raises an error naming it, with what was received."""
    with pytest.raises(error, match=re.escape(message)):
        call()


def test_restore_best_weights_needs_a_strategy_that_copies_weights():
    """A strategy without get_weights/set_weights is refused when the Trainer is built."""
    with pytest.raises(TypeError, match=re.escape(
        "callbacks[0] EarlyStopping(patience=2, min_delta=0, monitor='loss', mode='min', "
        "restore_best_weights=True) needs a strategy with get_weights() and set_weights() "
        "(steploop.capabilities.WeightsCopyable) to restore the best weights; Scripted has none"
    )):
        sl.Trainer(Scripted([1.0]), [sl.EarlyStopping(2, restore_best_weights=True)])


TARGETS = [0.0, 1.0, 2.0, 1.5, 9.0, 9.0, 3.0, 5.0, 7.0, 2.0, 4.0, 1.0]


def tracker():
    """Moves x towards each batch's target; the loss (before the update) is lowest at step 8."""
    return GradientDescent(lambda w, t: ((w - t) ** 2 - t, 2 * (w - t)), 0.0, learning_rate=0.25)


@pytest.mark.parametrize("k", [1, 4])
def test_restored_weights_equal_those_after_the_best_step(k):
    """At the stop, the variables are those after the best step, bit for bit (plain or fused)."""
    gd = tracker()
    early = sl.EarlyStopping(4, restore_best_weights=True)
    trainer = sl.Trainer(gd, [early], data=TARGETS, steps_per_call=k)
    result = trainer.run()
    losses = list(trainer.history["loss"])
    best = int(np.argmin(losses)) + 1
    assert (best, result.steps, result.status) == (8, 12, "converged")
    assert result.stop_reason.endswith("best weights restored)")
    reference = tracker()
    sl.Trainer(reference, data=TARGETS[:best]).run()
    assert gd.params["x"].tobytes() == reference.params["x"].tobytes()
    assert gd.params["x"].tobytes() != tracker_after(result.steps).tobytes()


def tracker_after(steps):
    reference = tracker()
    sl.Trainer(reference, data=TARGETS[:steps]).run()
    return reference.params["x"]


def test_no_restore_when_another_criterion_stops_the_run():
    """Only EarlyStopping's own stop restores; MaxSteps leaves the last variables."""
    gd = tracker()
    trainer = sl.Trainer(gd, [sl.EarlyStopping(4, restore_best_weights=True), sl.MaxSteps(5)],
                         data=TARGETS, steps_per_call=2)
    assert trainer.run().steps == 5
    assert gd.params["x"].tobytes() == tracker_after(5).tobytes()


def test_restore_inside_a_composite_is_refused_for_fused_calls():
    """Inside `|` with steps_per_call > 1 it could not copy at its step: refused at run."""
    early = sl.EarlyStopping(4, restore_best_weights=True)
    trainer = sl.Trainer(tracker(), [early | sl.MaxSteps(5)], data=TARGETS, steps_per_call=2)
    with pytest.raises(ValueError, match="must be a callback of its own"):
        trainer.run()
    gd = tracker()
    early = sl.EarlyStopping(4, restore_best_weights=True)
    result = sl.Trainer(gd, [early | sl.MaxSteps(20)], data=TARGETS).run()  # plain steps: fine
    assert result.steps == 12  # the best loss is at step 8
    assert gd.params["x"].tobytes() == tracker_after(8).tobytes()


def test_weights_copy_round_trip():
    """GradientDescent.get_weights is a copy later steps do not change; set_weights checks names."""
    gd = GradientDescent(lambda p: (float(p["a"] ** 2), {"a": 2 * p["a"]}), {"a": 1.0},
                         learning_rate=0.1)
    kept = gd.get_weights()
    gd.step()
    assert float(kept["a"]) == 1.0 and float(gd.params["a"]) != 1.0
    gd.set_weights(kept)
    assert float(gd.params["a"]) == 1.0
    with pytest.raises(ValueError, match=re.escape(
        "GradientDescent.set_weights: weights must map ['a'] to arrays (what get_weights "
        "returns), got ['b']"
    )):
        gd.set_weights({"b": 1.0})


def test_optax_step_restores_the_best_params():
    """OptaxStep: the params after the best step come back, bit for bit."""
    pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    from steploop.jax import OptaxStep

    def run_optax(callbacks, steps):
        step = OptaxStep(lambda p, t: (p["x"] - t) ** 2 - t, {"x": 0.0}, optax.sgd(0.25))
        sl.Trainer(step, callbacks, data=TARGETS[:steps]).run()
        return np.asarray(step.params["x"]).tobytes()

    restored = run_optax([sl.EarlyStopping(4, restore_best_weights=True)], len(TARGETS))
    assert restored == run_optax([], 8)
