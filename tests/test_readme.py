"""The README's runnable code blocks (fenced as ```python) run as written."""

import math
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_blocks_run():
    pytest.importorskip("tensorflow")  # the blocks import tensorflow and keras themselves
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) == 9
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    assert namespace["result"].steps == namespace["trainer"].step
    assert namespace["record"].target_gradients["z"]["x"] == 1.0
    grad = namespace["trainer"].last_record.gradients["x"]
    assert abs(float(grad)) < 1e-6
    assert namespace["restored"] == 25
    assert (namespace["resumed"].steps, namespace["resumed"].status) == (70, "converged")
    fused = namespace["fused_result"]
    assert (fused.steps, fused.status) == (70, "converged")
    # _loops: the compiled loops a strategy has built, one per signature; no public API counts
    # them, and one loop means the fused run did not retrace.
    assert namespace["step"].ready_to_fuse and len(namespace["step"]._loops) == 1


def test_readme_callback_stops_the_run():
    """The callback block needs no TensorFlow: it runs on the NumPy quadratic everywhere."""
    import steploop as sl
    from tests.helpers import quadratic

    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    namespace: dict = {"sl": sl}
    exec(compile(blocks[6], str(README), "exec"), namespace)
    result = sl.Trainer(quadratic(0.1), callbacks=[namespace["StopWhenClose"]()]).run()
    assert result.status == "stopped"
    assert result.stop_reason == f"x within 1e-3 of 4 at step {result.steps}"
    # after step k, x = 4 - 4 * 0.8**k: within 1e-3 of 4 first when 0.8**k < 2.5e-4
    assert result.steps == math.ceil(math.log(2.5e-4) / math.log(0.8)) == 38


def test_readme_strategy_for_a_new_framework():
    """The Momentum block (no TensorFlow): fused equals step by step, it resumes by name, its
    non-finite policy stops a diverging run naming the loss, and the history has its values."""
    import tempfile

    import numpy as np

    import steploop as sl

    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    namespace: dict = {"sl": sl, "tempfile": tempfile}
    exec(compile(blocks[4], str(README), "exec"), namespace)
    exec(compile(blocks[5], str(README), "exec"), namespace)  # the conformance kit on it
    report = namespace["report"]
    assert report["fused_equals_step_by_step"] == report["checkpoint_resume"] == "passed"
    assert all(v == "passed" or v.startswith("skipped") for v in report.values())
    fused = namespace["momentum_result"]
    plain = namespace["momentum_trainer"]().run()
    assert (fused.steps, fused.stop_reason) == (plain.steps, plain.stop_reason)
    assert fused.status == "converged" and fused.history == plain.history
    assert np.array_equal(fused.history["x"], plain.history["x"])
    resumed = namespace["momentum_resumed"]
    assert resumed.step == plain.steps and resumed.run().steps == plain.steps
    momentum = namespace["Momentum"]

    def blows_up(params):
        x = params["x"]
        loss = np.inf if x > 10 else (x - 4.0) ** 2
        return {"loss": loss, "values": {"x": x}}, {"x": 2 * (x - 4.0)}

    diverging = momentum(blows_up, {"x": 0.0}, lr=2.0, on_nonfinite="stop")
    result = sl.Trainer(diverging, [sl.MaxSteps(50)]).run()
    assert result.status == "nonfinite" and "non-finite loss at step" in result.stop_reason
    assert np.isfinite(diverging.params["x"])  # the bad step's update was not applied
    with pytest.raises(ValueError, match="Momentum: on_nonfinite must be one of"):
        momentum(blows_up, {"x": 0.0}, on_nonfinite="ignore")


def test_readme_validation_and_plateau_block():
    """The Evaluate/ReduceLROnPlateau block (no TensorFlow): fused, it stops where a
    step-by-step run does, with the rates halving after the evaluations without improvement."""
    import steploop as sl

    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    namespace: dict = {}
    exec(compile(blocks[7], str(README), "exec"), namespace)
    result, trainer = namespace["plateau_result"], namespace["plateau_trainer"]
    assert (result.steps, result.status) == (8, "converged")
    assert trainer.history["lr"][1::2].tolist() == [0.3, 0.3, 0.15, 0.075]
    plain = sl.Trainer(
        type(namespace["fit"])(namespace["fit"].loss_and_grad, 0.0, learning_rate=0.3),
        [sl.Evaluate([3.5, 4.5], every=2),
         sl.ReduceLROnPlateau("val_loss", factor=0.5, patience=1),
         sl.EarlyStopping(3, monitor="val_loss")],
        data=[4.0, 6.0] * 20,
    )
    assert plain.run().stop_reason == result.stop_reason
    assert plain.history == trainer.history


def test_readme_epochs_block():
    """The epoch-hook block (no TensorFlow): 4 batches x 3 epochs, one line per epoch."""
    import steploop as sl

    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    namespace: dict = {"sl": sl}
    exec(compile(blocks[8], str(README), "exec"), namespace)
    result = namespace["epochs_result"]
    assert (result.steps, result.status) == (12, "exhausted")
    assert result.history["epoch"].tolist() == [1] * 4 + [2] * 4 + [3] * 4
