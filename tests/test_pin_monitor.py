"""Monitors and loggers: a logger inside the same callback as the publisher it reports, after
it, is accepted and reports what it published."""

import steploop as sl
from tests.callbacks.test_evaluate import TARGETS, drifting


def test_a_callback_list_with_the_evaluate_before_its_logger_is_accepted(tmp_path):
    """One CallbackList that both publishes (an Evaluate) and reports (a CSVLogger after it):
    the logger sees val_loss at the evaluated steps, as when the two are listed apart."""
    path = tmp_path / "log.csv"
    both = sl.CallbackList([sl.Evaluate([4.0], every=2), sl.CSVLogger(str(path))])
    trainer = sl.Trainer(drifting(), [both, sl.MaxSteps(4)], data=TARGETS)
    trainer.run()
    rows = [line.split(",") for line in path.read_text().splitlines()]
    assert rows[0] == ["step", "loss", "val_loss"]
    val = trainer.history["val_loss"]
    assert round(float(val[1]), 10) == 2.0736  # x = 2.56 after two steps toward 4: (4 - x)**2
    assert [row[2] for row in rows[1:]] == ["nan", repr(float(val[1])), "nan", repr(float(val[3]))]
