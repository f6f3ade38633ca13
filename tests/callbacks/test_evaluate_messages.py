"""Evaluate on its own: batch sizes, averaging, publishing, and every message in full."""

import numpy as np
import pytest

import steploop as sl
from steploop.callbacks.evaluate import Evaluate, batch_size
from steploop.numpy import GradientDescent
from tests.helpers import raised_message


class FakeTrainer:
    """What Evaluate reads of a Trainer: its strategy."""

    def __init__(self, strategy=None):
        self.strategy = strategy


message = raised_message


@pytest.mark.parametrize(
    ("batch", "size"),
    [
        ((np.zeros((3, 2)), np.zeros(3)), 3),
        ([[np.zeros(4)]], 4),
        ({"x": np.zeros(5), "y": np.zeros(2)}, 5),
        (np.zeros(2), 2),
        (2.0, None),
        (np.float64(2.0), None),
        ((), None),
        ({}, None),
        ((np.zeros(()),), None),
    ],
)
def test_batch_size_is_the_leading_dimension_of_the_first_leaf(batch, size):
    assert batch_size(batch) == size


def test_an_unknown_leading_dimension_is_no_size():
    class Symbolic:
        shape = (None, 3)

    assert batch_size(Symbolic()) is None


@pytest.mark.parametrize(
    ("data", "got"), [("abc", "str"), (b"x", "bytes"), ({"a": 1}, "dict"), (3, "int")]
)
def test_data_that_is_not_batches_is_named(data, got):
    assert message(TypeError, Evaluate, data) == (
        "Evaluate data must be None or a re-iterable of batches (a list, sl.batches(...), a "
        f"tf.data.Dataset), got {got}"
    )


def test_data_used_up_after_one_pass_is_named():
    assert message(TypeError, Evaluate, (x for x in [1.0])) == (
        "Evaluate data must be re-iterable, as it is read at every evaluation; got a generator, "
        "which is used up after one pass: pass a list of batches"
    )


@pytest.mark.parametrize(("prefix", "shown"), [("", "''"), (None, "None"), (1, "1")])
def test_a_bad_prefix_is_named(prefix, shown):
    assert message(TypeError, Evaluate, [1.0], prefix=prefix) == (
        f"Evaluate prefix must be a non-empty str, got {shown}"
    )


def test_a_bad_fn_is_named():
    assert message(TypeError, Evaluate, [1.0], fn="f") == (
        "Evaluate fn must be None or a function, got str"
    )


def test_arguments_are_kept():
    data = [1.0, 2.0]
    evaluate = Evaluate(data, every=3, prefix="test_", fn=len)
    assert evaluate.data is data and evaluate.prefix == "test_" and evaluate.fn is len
    assert evaluate.schedule == sl.every(3)
    assert repr(evaluate) == "Evaluate(every=3, prefix='test_')"
    assert Evaluate().data is None and repr(Evaluate()) == "Evaluate(every=1, prefix='val_')"


def test_validate_asks_for_an_evaluating_strategy_or_fn():
    class Evaluating:
        def evaluate(self, batch=None):
            return {"loss": 0.0}

    assert Evaluate([1.0]).validate(FakeTrainer(object())) == (
        "needs a strategy that evaluates without updating (steploop.capabilities.Evaluates), or "
        "Evaluate(fn=...); object has none"
    )
    assert Evaluate([1.0], fn=len).validate(FakeTrainer(object())) is None
    assert Evaluate([1.0]).validate(FakeTrainer(Evaluating())) is None


def test_results_are_averaged_by_batch_size():
    batches = [(np.zeros(1), 1.0), (np.zeros(3), 5.0)]
    evaluate = Evaluate(batches, fn=lambda b: {"loss": b[1], "acc": 2 * b[1]})
    assert evaluate.evaluate(FakeTrainer()) == {"val_loss": 4.0, "val_acc": 8.0}
    assert list(evaluate.evaluate(FakeTrainer())) == ["val_loss", "val_acc"]


def test_results_are_a_plain_mean_when_a_batch_has_no_size():
    batches = [(np.zeros(1), 1.0), (2.0, 5.0), (np.zeros(5), 3.0)]
    evaluate = Evaluate(batches, prefix="t_", fn=lambda b: {"loss": b[1]})
    assert evaluate.evaluate(FakeTrainer()) == {"t_loss": 3.0}


def test_without_data_the_strategy_is_called_once_without_a_batch():
    calls = []

    class Strategy:
        def evaluate(self, *batch):
            calls.append(batch)
            return {"loss": 2.5, "n": 1.0}

    evaluate = Evaluate()
    assert evaluate.evaluate(FakeTrainer(Strategy())) == {"val_loss": 2.5, "val_n": 1.0}
    assert calls == [()]


def test_batches_data_is_read_as_its_first_epoch():
    data = sl.batches(np.arange(4.0), batch_size=2, shuffle=3)
    seen = []
    evaluate = Evaluate(data, fn=lambda b: seen.append(b.tolist()) or {"loss": float(b.sum())})
    assert evaluate.evaluate(FakeTrainer()) == {"val_loss": 3.0}
    assert seen == [b.tolist() for b in data.epoch(0)]


def test_fn_results_are_checked():
    bad = Evaluate([1.0], fn=lambda b: [1.0])
    assert message(TypeError, bad.evaluate, FakeTrainer()) == (
        "Evaluate fn must return a dict of numbers with a 'loss' entry, got list"
    )
    no_loss = Evaluate([1.0], fn=lambda b: {"acc": 1.0, "b": 2.0})
    assert message(TypeError, no_loss.evaluate, FakeTrainer()) == (
        "Evaluate fn must return a dict of numbers with a 'loss' entry, got ['acc', 'b']"
    )
    shaped = Evaluate([1.0], fn=lambda b: {"loss": np.ones(2)})
    assert message(TypeError, shaped.evaluate, FakeTrainer()) == (
        "Evaluate fn.evaluate: 'loss' must be one number to be averaged over batches, got shape "
        "(2,)"
    )


def test_every_batch_must_report_the_same_values():
    results = iter([{"loss": 1.0}, {"loss": 1.0}, {"loss": 1.0, "acc": 0.5}])
    evaluate = Evaluate([1, 2, 3], fn=lambda b: next(results))
    assert message(ValueError, evaluate.evaluate, FakeTrainer()) == (
        "Evaluate: batch 2 gave the values ['acc', 'loss'], batch 0 gave ['loss']; every batch "
        "must report the same values"
    )


def test_no_batch_is_named():
    assert message(ValueError, Evaluate([], fn=len).evaluate, FakeTrainer()) == (
        "Evaluate data has no batch to evaluate on"
    )


def test_published_at_its_steps_only():
    evaluate = Evaluate([1.0], fn=lambda b: {"loss": 0.5})
    assert evaluate.provides("val_x") and not evaluate.provides("x_val")
    assert evaluate.results == {} and evaluate.published_at(0) is None
    published = Evaluate([1.0], every=2, fn=lambda b: {"loss": 0.5})
    descent = GradientDescent(lambda x: (x**2, 2 * x), 1.0, learning_rate=0.1)
    sl.Trainer(descent, [published]).run(max_steps=3)
    assert published.published_at(2) == {"val_loss": 0.5}
    assert published.published_at(3) is None and published.published_at(0) is None
    results = published.results
    results["val_loss"] = 9.0
    assert published.results == {"val_loss": 0.5}


def test_an_empty_batch_weighs_nothing():
    batches = [(np.zeros(0), 1.0), (np.zeros(2), 4.0)]
    evaluate = Evaluate(batches, fn=lambda b: {"loss": b[1]})
    assert evaluate.evaluate(FakeTrainer()) == {"val_loss": 4.0}
