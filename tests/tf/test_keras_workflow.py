"""examples/keras_workflow.py's printed numbers equal a hand-written Keras-style loop's: the same
epochs, the same val_loss each epoch, the learning rate halved at the same epochs, the same stop
and the best weights restored. The loop below takes only the problem (data, model, settings) from
the example; it batches, shuffles, reduces and stops by the documented rules, written out here."""

import importlib.util
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "keras_workflow.py"


def _example():
    spec = importlib.util.spec_from_file_location("keras_workflow", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines functions only; main() runs under __main__
    return module


def hand_loop(example):
    """The run by hand: per epoch, the rows in the permutation ``default_rng([seed, epoch])``
    (``sl.batches``'s documented shuffle), one Adam step per batch of 32; then val_loss on the
    held-out rows; ReduceLROnPlateau (halve after ``patience`` epochs without a new best) and
    EarlyStopping (stop after ``patience`` epochs without beating the best by ``min_delta``,
    then put the best epoch's weights back). Returns the epoch rows, the stop epoch and the
    val_loss of the restored weights."""
    (xs, ys), (xv, yv), model = example.problem()
    optimizer = keras.optimizers.Adam(example.LEARNING_RATE)
    variables = model.trainable_variables

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = example.mean_squared_error(model, (x, y))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))

    def val_loss():
        return float(example.mean_squared_error(model, (tf.constant(xv), tf.constant(yv))))

    factor, plateau_patience = example.PLATEAU["factor"], example.PLATEAU["patience"]
    early_patience, min_delta = example.EARLY["patience"], example.EARLY["min_delta"]
    plateau_best, plateau_wait = np.inf, 0
    early_best, early_wait, best_weights = np.inf, 0, None
    rows = []
    for epoch in range(1, example.EPOCHS + 1):
        lr = float(optimizer.learning_rate)
        order = np.random.default_rng([example.SHUFFLE, epoch - 1]).permutation(len(xs))
        for start in range(0, len(xs), example.BATCH):
            rows_of_batch = order[start : start + example.BATCH]
            train_step(tf.constant(xs[rows_of_batch]), tf.constant(ys[rows_of_batch]))
        value = val_loss()
        rows.append((epoch, value, lr))
        if value < plateau_best:
            plateau_best, plateau_wait = value, 0
        else:
            plateau_wait += 1
            if plateau_wait >= plateau_patience:
                optimizer.learning_rate.assign(lr * factor)
                plateau_wait = 0
        if value < early_best - min_delta:
            early_best, early_wait = value, 0
            best_weights = [v.numpy().copy() for v in variables]
        else:
            early_wait += 1
            if early_wait >= early_patience:
                for variable, best in zip(variables, best_weights, strict=True):
                    variable.assign(best)
                return rows, epoch, val_loss()
    return rows, example.EPOCHS, val_loss()


@pytest.fixture(scope="module")
def printed():
    run = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=600, check=True
    )
    return run.stdout


def test_the_example_prints_what_a_hand_loop_computes(printed):
    rows, stop_epoch, restored = hand_loop(_example())
    shown = [
        (int(e), float(v), float(lr))
        for e, v, lr in re.findall(r"epoch +(\d+): val_loss (\S+), lr (\S+)", printed)
    ]
    assert [row[0] for row in shown] == [row[0] for row in rows] == list(range(1, stop_epoch + 1))
    assert [row[2] for row in shown] == pytest.approx([row[2] for row in rows], rel=1e-6)
    assert [row[1] for row in shown] == pytest.approx([row[1] for row in rows], rel=1e-4)
    assert len({row[2] for row in rows}) > 1, "the learning rate never changed: a weak check"
    assert stop_epoch < 60, "EarlyStopping never stopped"
    steps = stop_epoch * 8
    assert f"converged after epoch {stop_epoch} ({steps} steps)" in printed
    best = int(np.argmin([row[1] for row in rows])) + 1
    match = re.search(r"best epoch (\d+); val_loss with the restored weights (\S+)", printed)
    assert match is not None and int(match.group(1)) == best
    assert float(match.group(2)) == pytest.approx(restored, rel=1e-4)
    assert restored == pytest.approx(min(row[1] for row in rows), rel=1e-6)
