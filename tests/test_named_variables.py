"""``NamedVariables`` on NumPy boxes (a stand-in for variables updated in place)."""

import numpy as np
import pytest

from steploop.named_variables import NamedVariables, check_weights


class Box:
    def __init__(self, name, value):
        self.name, self.value = name, np.array(value)


class Boxes(NamedVariables):
    _name_of = staticmethod(lambda box: box.name)
    _to_numpy = staticmethod(lambda box: box.value)
    _assign = staticmethod(lambda box, value: setattr(box, "value", np.array(value)))


def message(owner, names, got):
    return (
        f"{owner}.set_weights: weights must map {names} to arrays (what get_weights returns), "
        f"got {got}"
    )


@pytest.mark.parametrize("hook", ["_name_of", "_to_numpy"])
def test_the_framework_hooks_are_abstract(hook):
    with pytest.raises(NotImplementedError):
        getattr(NamedVariables, hook)(Box("w", 1.0))
    with pytest.raises(NotImplementedError):
        NamedVariables._assign(Box("w", 1.0), 2.0)


def test_before_the_variables_are_known_there_are_none():
    boxes = Boxes()
    assert boxes.variables() == {}
    assert boxes.get_weights() == {}
    boxes.set_weights({})
    with pytest.raises(ValueError) as raised:
        boxes.set_weights({"w": 1.0})
    assert str(raised.value) == message("Boxes", [], "['w']")


def test_adopted_variables_are_named_uniquely_in_their_order():
    boxes = Boxes()
    found = (Box("w", 1.0), Box("b", 2.0), Box("w", 3.0))
    assert boxes._adopt(found) is found
    variables = boxes.variables()
    assert list(variables) == ["w", "b", "w_1"]
    assert [float(v) for v in variables.values()] == [1.0, 2.0, 3.0]
    assert variables["b"] is found[1].value
    assert boxes._canonical(found) == (1, 0, 2)


def test_get_weights_copies_and_set_weights_assigns_by_name():
    boxes = Boxes()
    found = (Box("w", [1.0, 2.0]), Box("b", 0.5))
    boxes._adopt(found)
    weights = boxes.get_weights()
    assert list(weights) == ["w", "b"]
    assert weights["w"] is not found[0].value
    weights["w"][0] = 9.0
    assert found[0].value.tolist() == [1.0, 2.0]
    boxes.set_weights({"b": 6.0, "w": [7.0, 8.0]})
    assert found[0].value.tolist() == [7.0, 8.0]
    assert float(found[1].value) == 6.0
    assert {k: v.tolist() for k, v in boxes.get_weights().items()} == {"w": [7.0, 8.0], "b": 6.0}


def test_the_same_objects_again_keep_the_known_variables():
    boxes = Boxes()
    first = (Box("a", 1.0), Box("b", 2.0))
    boxes._adopt(first)
    assert boxes._adopt(tuple(first)) is first
    assert boxes._adopt((first[0], first[1])) is first


@pytest.mark.parametrize(
    "change",
    [
        lambda first: first[:1],  # fewer
        lambda first: (*first, Box("c", 3.0)),  # more
        lambda first: (first[0], Box("b", 2.0)),  # one other object, equal-looking
        lambda first: (Box("x", 0.0), Box("y", 0.0)),  # all others
    ],
)
def test_other_variables_are_adopted_with_their_names(change):
    boxes = Boxes()
    first = (Box("a", 1.0), Box("b", 2.0))
    boxes._adopt(first)
    found = change(first)
    assert boxes._adopt(found) is found
    assert list(boxes.variables()) == [boxes._name_of(v) for v in found]
    assert list(boxes.get_weights()) == [boxes._name_of(v) for v in found]


def test_the_order_of_other_variables_is_computed():
    boxes = Boxes()
    own = (Box("a", 1.0), Box("b", 2.0), Box("c", 3.0))
    boxes._adopt(own)
    assert boxes._canonical(own) == (0, 1, 2)
    assert boxes._canonical([Box("z", 0.0), Box("y", 0.0), Box("z", 0.0)]) == (1, 0, 2)
    assert boxes._canonical(list(own)[::-1]) == (2, 1, 0)


@pytest.mark.parametrize(
    ("weights", "got"),
    [
        ({"w": 1.0}, "['w']"),
        ({"w": 1.0, "b": 2.0, "c": 3.0}, "['b', 'c', 'w']"),
        ([1.0, 2.0], "list"),
        (None, "NoneType"),
    ],
)
def test_set_weights_refuses_weights_that_do_not_match_the_names(weights, got):
    boxes = Boxes()
    found = (Box("w", 1.0), Box("b", 2.0))
    boxes._adopt(found)
    with pytest.raises(ValueError) as raised:
        boxes.set_weights(weights)
    assert str(raised.value) == message("Boxes", ["b", "w"], got)
    assert [float(box.value) for box in found] == [1.0, 2.0]


def test_check_weights_accepts_exactly_the_names_in_any_order():
    check_weights("O", {"b": 1, "a": 2}, ("a", "b"))
    with pytest.raises(ValueError) as raised:
        check_weights("Owner", {"a": 1, "c": 2}, ["b", "a"])
    assert str(raised.value) == message("Owner", ["a", "b"], "['a', 'c']")
