"""The record of a checkpoint's variables and restore by name, without any framework."""

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steploop import variable_record as vr

SPECS = {"b": ((3, 1), "float32"), "a": ((2,), "float64")}


def test_the_record_round_trips_sorted_by_name(tmp_path):
    """What is written is read back, variables sorted by name, with the optimizer's order."""
    prefix = str(tmp_path / "ckpt-1")
    vr.write(prefix, SPECS, "Adam", ["a", "b"])
    record = vr.read("S.restore", prefix)
    assert record["variables"] == [
        {"name": "a", "shape": [2], "dtype": "float64"},
        {"name": "b", "shape": [3, 1], "dtype": "float32"},
    ]
    assert record["optimizer"] == {"class": "Adam", "order": ["a", "b"]}
    vr.check("S.restore", prefix, record, SPECS)
    with pytest.raises(ValueError, match=r"variable 'b' is \(3,\) float32 but the checkpoint"):
        vr.check("S.restore", prefix, record, {**SPECS, "b": ((3,), "float32")})


def test_a_missing_record_or_another_format_is_refused(tmp_path):
    prefix = str(tmp_path / "ckpt-1")
    with pytest.raises(ValueError, match=r"has no .*variables\.json"):
        vr.read("S.restore", prefix)
    with open(prefix + vr.SUFFIX, "w") as file:
        file.write('{"format": 99}')
    with pytest.raises(ValueError, match=r"has record format 99; this steploop reads format 1"):
        vr.read("S.restore", prefix)


@given(st.lists(st.text(min_size=1, max_size=3), unique=True, max_size=8))
def test_canonical_order_sorts_by_name(names):
    """The canonical order lists the positions of the names in sorted order."""
    assert [names[i] for i in vr.canonical_order(names)] == sorted(names)


def test_slot_order_follows_the_record_and_refuses_another_built_order():
    record = {"optimizer": {"order": ["b", "a"]}}
    assert vr.slot_order("S", "p", record, ["a", "b"]) == ["b", "a"]
    assert vr.slot_order("S", "p", {"optimizer": {"order": None}}, ["b", "a"]) == ["a", "b"]
    assert vr.slot_order("S", "p", {"optimizer": {"order": ["z"]}}, ["b", "a"]) == ["a", "b"]
    with pytest.raises(ValueError, match=r"built with the variables in the order \['a', 'b'\]"):
        vr.slot_order("S", "p", record, ["a", "b"], ["a", "b"], "Adam")


def test_copy_takes_the_named_files_and_the_record(tmp_path):
    source, target = str(tmp_path / "ckpt-1"), str(tmp_path / "ckpt-2")
    for suffix in (".index", ".data-0", vr.SUFFIX, ".history.npz"):
        with open(source + suffix, "w") as file:
            file.write(suffix)
    vr.copy(source, target, (".index", ".data-"))
    copied = sorted(name for name in os.listdir(tmp_path) if name.startswith("ckpt-2"))
    assert copied == ["ckpt-2.data-0", "ckpt-2.index", "ckpt-2" + vr.SUFFIX]


class Demo(vr.RestoreByName):
    """Variables found at the first step; values kept in a dict, written as the record."""

    def __init__(self, takes_batch):
        self._variables, self._takes_batch, self.events = None, takes_batch, []

    def _write(self, prefix):
        vr.write(prefix, {"w": ((), "float64")}, "SGD", None)

    def _read(self, owner, prefix, record):
        vr.check(owner, prefix, record, {"w": ((), "float64")})
        self.events.append(("read", prefix))

    def _discover(self, arguments):
        self.events.append(("discover", arguments))
        self._variables = ("w",)


def test_a_restore_waits_for_the_first_batch_and_a_save_meanwhile_copies(tmp_path):
    """With a batch to come, restore reads the record now and the values at the first step."""
    prefix = str(tmp_path / "ckpt-1")
    Demo(False)._write(prefix)
    strategy = Demo(True)
    with pytest.raises(ValueError, match="the variables are not known yet"):
        strategy.save(prefix)
    strategy.restore(prefix)
    assert strategy.events == []
    strategy.save(str(tmp_path / "ckpt-2"))  # copies the checkpoint read
    assert os.path.exists(str(tmp_path / "ckpt-2") + vr.SUFFIX)
    strategy._restore_pending((1.0,))
    assert strategy.events == [("discover", (1.0,)), ("read", prefix)]
    eager = Demo(False)
    eager.restore(prefix)
    assert eager.events == [("discover", ()), ("read", prefix)]
