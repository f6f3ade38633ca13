"""Stop.during_call keeps the stop's status: a stop asked while a fused call ran ends the run as
it would have after the call's last step, with the status it was asked with."""

from steploop.records import Stop


def test_a_stop_asked_during_a_call_keeps_its_status():
    stop = Stop("loss is NaN", "nonfinite").during_call(4, 7)
    assert stop == Stop(
        "loss is NaN (asked during the fused call of steps 4-7; took effect after step 7, "
        "its last step)",
        "nonfinite",
    )
