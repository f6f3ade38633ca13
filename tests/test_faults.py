"""Faults: a loss or a callback that raises reaches the caller unchanged, after the loggers wrote
every finished step and without touching the last good checkpoint."""

import csv

import pytest

import steploop as sl
from tests.helpers import RaiseAt, gradient_descent


def failing_loss(at, error):
    def loss_and_grad(x, batch):
        if batch == at:
            raise error
        return (x - 4.0) ** 2, 2.0 * (x - 4.0)

    return loss_and_grad


@pytest.mark.parametrize("where", ["loss", "callback"])
def test_an_error_leaves_a_complete_log_and_the_last_checkpoint(tmp_path, where):
    error = RuntimeError("boom")
    loss = failing_loss(7, error) if where == "loss" else failing_loss(None, error)
    saver = sl.Checkpoint(tmp_path / "ckpt", every=5, keep=1)
    log = tmp_path / "log.csv"
    callbacks = [sl.CSVLogger(log), saver]
    if where == "callback":
        callbacks.append(RaiseAt(7, error))
    trainer = sl.Trainer(gradient_descent(loss), callbacks, data=range(1, 20))
    with pytest.raises(RuntimeError) as info:
        trainer.run()
    assert info.value is error  # the very exception, not a wrapper
    assert trainer.result.status == "error"
    with open(log, newline="") as file:
        steps = [int(row[0]) for row in list(csv.reader(file))[1:]]
    finished = 6 if where == "loss" else 7  # a callback raises after its step's CSV row
    assert steps == list(range(1, finished + 1))
    assert saver.latest == 5  # not replaced by a save of the failed run
    resumed = sl.Trainer(gradient_descent(failing_loss(None, error)), [saver], data=range(1, 20))
    assert resumed.restore(saver.directory) == 5
