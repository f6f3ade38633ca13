"""EarlyStopping's host shortcut is the host's alone: a framework's namespace (here NumPy arrays
holding two runs at once, values no Python ``if`` can branch on, as in a traced loop) takes the
namespace form, which decides each run on its own."""

import math

import numpy as np

import steploop as sl
from steploop.criteria_program import Quantities
from steploop.ops import HOST, ArrayOps
from tests.test_ops_core import PRIMITIVES

NUMPY = ArrayOps("NUMPY", **PRIMITIVES)


def test_the_usual_settings_under_an_array_namespace_decide_each_element_as_the_host():
    criterion = sl.EarlyStopping(2)  # no baseline, no warm-up: the host has its shortcut
    states = [(math.nan, 0.0, 0.0, 1.0), (1.0, 3.0, 1.0, 1.0)]
    losses = [5.0, 2.0]  # the first improves on nothing yet; the second does not beat 1.0
    columns = tuple(np.array(column) for column in zip(*states, strict=True))
    met, state = criterion.test(NUMPY, columns, Quantities(4, np.array(losses)))
    assert np.asarray(met).tolist() == [False, True]
    assert [np.asarray(column).tolist() for column in state] == [
        [5.0, 1.0],
        [4.0, 3.0],
        [0.0, 2.0],
        [1.0, 1.0],
    ]
    for index, (alone, loss) in enumerate(zip(states, losses, strict=True)):
        host_met, host_state = criterion.test(HOST, alone, Quantities(4, loss))
        assert host_met == bool(np.asarray(met)[index])
        assert host_state == tuple(float(np.asarray(column)[index]) for column in state)
