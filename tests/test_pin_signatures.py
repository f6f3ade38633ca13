"""Hook signatures checked once per class: an object of a class found right is still checked for
the hooks set on the object itself, and a class is taken as found right only once its own hooks
were checked."""

import pytest

import steploop as sl


def refused(*callbacks):
    with pytest.raises(TypeError) as caught:
        sl.CallbackList(callbacks)
    return str(caught.value)


def test_an_object_setting_its_only_hook_is_checked_after_its_class_passed():
    """The class writes one hook and passed; an object that sets that hook on itself, wrongly,
    is refused all the same."""

    class One(sl.Callback):
        def on_step_end(self, trainer, record):
            pass

    sl.CallbackList([One()])
    bad = One()
    bad.on_step_end = lambda trainer: None
    assert refused(bad) == (
        "callbacks[0] (One).on_step_end must accept (trainer, record); its signature is (trainer)"
    )


def test_a_class_whose_hook_only_objects_replaced_is_still_checked():
    """An object whose own hook is right says nothing about its class's hook: the next object,
    which uses the class's wrong hook, is refused."""

    class WrongInClass(sl.Callback):
        def on_step_end(self, trainer):
            pass

    fixed = WrongInClass()
    fixed.on_step_end = lambda trainer, record: None
    assert sl.CallbackList([fixed]).callbacks == (fixed,)
    assert refused(WrongInClass()) == (
        "callbacks[0] (WrongInClass).on_step_end must accept (trainer, record); its signature is "
        "(trainer)"
    )
