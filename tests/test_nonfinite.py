"""The core non-finite policies, checked on the host, without any framework."""

import sys

import pytest

from steploop.nonfinite import POLICIES, NonFinite, describe
from steploop.numpy.gradient_descent import HOST_GUARD


class State:
    """A one-number state whose update the test scripts."""

    def __init__(self, value, new):
        self.value, self.new, self.log = value, new, []

    def update(self):
        self.log.append("update")
        self.value = self.new

    def save(self):
        state, saved = self, self.value

        class Saved:
            def not_finite(self):
                return state.value != state.value or abs(state.value) == float("inf")

            def put_back(self):
                state.log.append("put back")
                state.value = saved

        return Saved()


@pytest.mark.parametrize(
    ("policy", "flags", "new", "code", "value"),
    [
        ("apply", [True, False], 2.0, None, 2.0),
        ("skip", [False, False], 2.0, 0, 2.0),
        ("skip", [False, True], 2.0, 2, 1.0),
        ("stop", [True, True], 2.0, 1, 1.0),
        ("rollback", [False, False], 2.0, 0, 2.0),
        ("rollback", [False, False, True], 2.0, 3, 1.0),
        ("rollback", [False, False], float("inf"), -1, 1.0),
    ],
)
def test_guard_applies_skips_or_rolls_back_and_codes_the_first_bad_quantity(
    policy, flags, new, code, value
):
    state = State(1.0, new)
    assert NonFinite(policy).guard(HOST_GUARD, flags, state.update, state.save) == code
    assert state.value == value


def test_policies_are_checked_naming_the_strategy():
    assert tuple(NonFinite.of("S", p).policy for p in POLICIES) == POLICIES
    with pytest.raises(ValueError, match=r"^S: on_nonfinite must be one of \['apply', 'skip', "):
        NonFinite.of("S", 3)


def test_stop_after_names_the_quantity_only_under_stop():
    names = ("w", "b")
    assert NonFinite("skip").stop_after(1, {"nonfinite": 1}, names) is None
    assert NonFinite("stop").stop_after(1, {"nonfinite": 0}, names) is None
    assert NonFinite("stop").stop_after(4, {"nonfinite": 3}, names) == (
        "non-finite gradient of 'b' at step 4; its update was not applied, the variables are "
        "those of the step before"
    )
    assert describe(-1, names).startswith("variables or optimizer state")


def test_with_code_adds_the_code_except_under_apply():
    assert NonFinite("apply").with_code({"a": 1}, None) == {"a": 1}
    assert NonFinite("skip").with_code({"a": 1}, 0) == {"a": 1, "nonfinite": 0}


def test_the_core_modules_import_no_framework():
    import steploop.chunks
    import steploop.nonfinite
    import steploop.outputs  # noqa: F401

    for module in ("steploop.nonfinite", "steploop.outputs", "steploop.chunks"):
        with open(sys.modules[module].__file__) as file:
            source = file.read()
        assert "tensorflow" not in source.split('"""', 2)[2]


def test_a_strategy_reports_its_codes_by_the_names_of_its_variables():
    """ReportsNonFinite answers stop_after and nonfinite_quantity from _policy and _names."""
    from steploop.nonfinite import NonFinite, ReportsNonFinite

    strategy = ReportsNonFinite()
    strategy._policy, strategy._names = NonFinite.of("S", "stop"), None
    assert strategy.nonfinite_quantity(2) == "quantity 2"  # names not known yet
    strategy._names = ("w",)
    assert strategy.nonfinite_quantity(2) == "gradient of 'w'"
    assert strategy.stop_after(4, {"nonfinite": 1}).startswith("non-finite loss at step 4")
    assert strategy.stop_after(4, {"nonfinite": 0}) is None
