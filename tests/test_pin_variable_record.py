"""The variables record and restore by name: full messages, what a save after a restore writes,
and copies that keep the files' contents."""

import pytest

from steploop import variable_record as vr


def message(call, error=ValueError):
    with pytest.raises(error) as caught:
        call()
    return str(caught.value)


def test_a_missing_record_has_its_full_message(tmp_path):
    prefix = str(tmp_path / "ckpt-1")
    assert message(lambda: vr.read("S.restore", prefix)) == (
        f"S.restore: checkpoint {prefix!r} has no {prefix + '.variables.json'!r} (the names, "
        "shapes and dtypes of its variables), so its variables cannot be matched by name; it was "
        "written by an older steploop or is incomplete"
    )


def test_check_names_the_owner_the_checkpoint_and_each_difference(tmp_path):
    prefix = str(tmp_path / "ckpt-1")
    vr.write(prefix, {"a": ((2,), "float64")}, "SGD", None)
    record = vr.read("S.restore", prefix)
    assert message(lambda: vr.check("S.restore", prefix, record, {"a": ((3,), "float64")})) == (
        f"S.restore: checkpoint {prefix!r} does not match the variables, which are restored by "
        "name: variable 'a' is (3,) float64 but the checkpoint has (2,) float64. The checkpoint "
        "holds: 'a' (2,) float64"
    )


def test_another_built_slot_order_has_its_full_message():
    record = {"optimizer": {"order": ["b", "a"]}}
    assert message(lambda: vr.slot_order("S", "p", record, ["a", "b"], ["a", "b"], "Adam")) == (
        "S: the optimizer Adam was built with the variables in the order ['a', 'b'], but "
        "checkpoint 'p' saved its slots for the order ['b', 'a']; pass an optimizer that is not "
        "built yet (steploop builds it by name)"
    )


def test_no_variables_says_what_there_is_nothing_to_do():
    assert str(vr.no_variables("S", "loss")) == (
        "S: the loss read no trainable variable, so there is nothing to restore or optimise; "
        "pass var_list or use the variables in it"
    )
    assert str(vr.no_variables("S", "target", "differentiate")) == (
        "S: the target read no trainable variable, so there is nothing to differentiate; pass "
        "var_list or use the variables in it"
    )


def test_copy_keeps_each_files_bytes(tmp_path):
    source, target = str(tmp_path / "ckpt-1"), str(tmp_path / "ckpt-2")
    contents = {".index": b"\x00index", vr.SUFFIX: b'{"format": 1}'}
    for suffix, data in contents.items():
        with open(source + suffix, "wb") as file:
            file.write(data)
    vr.copy(source, target, (".index",))
    for suffix, data in contents.items():
        with open(target + suffix, "rb") as file:
            assert file.read() == data


class Demo(vr.RestoreByName):
    """Variables found at the first step; its own files end in ``.values``."""

    _suffixes = (".values",)

    def __init__(self, takes_batch, spec=((), "float64")):
        self._variables, self._takes_batch, self.spec, self.events = None, takes_batch, spec, []

    def _write(self, prefix):
        with open(prefix + ".values", "w") as file:
            file.write("w=1")
        vr.write(prefix, {"w": self.spec}, "SGD", None)
        self.events.append(("write", prefix))

    def _read(self, owner, prefix, record):
        vr.check(owner, prefix, record, {"w": self.spec})
        self.events.append(("read", prefix))

    def _discover(self, arguments):
        self._variables = ("w",)


def saved(tmp_path, name="ckpt-1"):
    prefix = str(tmp_path / name)
    Demo(False)._write(prefix)
    return prefix


def test_a_save_before_the_variables_are_known_has_its_full_message(tmp_path):
    assert message(lambda: Demo(True).save(str(tmp_path / "x"))) == (
        "Demo.save: the variables are not known yet (they are those the loss reads, found at the "
        "first step); take a step first or pass var_list"
    )


def test_a_save_while_a_restore_waits_copies_the_checkpoint_files(tmp_path):
    prefix = saved(tmp_path)
    strategy = Demo(True)
    strategy.restore(prefix)
    target = str(tmp_path / "ckpt-2")
    strategy.save(target)
    with open(target + ".values") as file:
        assert file.read() == "w=1"
    assert vr.read("T", target)["variables"] == [{"name": "w", "shape": [], "dtype": "float64"}]
    assert strategy.events == []


def test_a_save_after_an_eager_restore_writes_anew(tmp_path):
    prefix = saved(tmp_path)
    strategy = Demo(False)
    strategy.restore(prefix)
    target = str(tmp_path / "ckpt-2")
    strategy.save(target)
    assert strategy.events == [("read", prefix), ("write", target)]


def test_a_save_after_the_waiting_restore_is_carried_out_writes_anew(tmp_path):
    prefix = saved(tmp_path)
    strategy = Demo(True)
    strategy.restore(prefix)
    strategy._restore_pending((1.0,))
    target = str(tmp_path / "ckpt-2")
    strategy.save(target)
    assert strategy.events == [("read", prefix), ("write", target)]


def test_a_restore_names_the_strategy_in_its_errors(tmp_path):
    missing = str(tmp_path / "none")
    assert message(lambda: Demo(False).restore(missing)).startswith(
        f"Demo.restore: checkpoint {missing!r} has no "
    )
    prefix = saved(tmp_path)
    assert message(lambda: Demo(False, ((2,), "float64")).restore(prefix)) == (
        f"Demo.restore: checkpoint {prefix!r} does not match the variables, which are restored "
        "by name: variable 'w' is (2,) float64 but the checkpoint has () float64. The checkpoint "
        "holds: 'w' () float64"
    )
    waiting = Demo(True, ((2,), "float64"))
    waiting.restore(prefix)
    assert message(lambda: waiting._restore_pending((1.0,))).startswith(
        f"Demo.restore: checkpoint {prefix!r} does not match the variables"
    )
