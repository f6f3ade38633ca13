"""Schedules: exact first steps, epoch schedules read from their clock, full error messages."""

import pytest

import steploop as sl


def message(call, error):
    with pytest.raises(error) as caught:
        call()
    return str(caught.value)


def test_every_n_first_within_is_the_next_multiple_inside_the_window():
    schedule = sl.every(4)
    assert schedule.first_within(5, 10) == 8
    assert schedule.first_within(5, 3) == 8  # 6 .. 8: the last step of the window
    assert schedule.first_within(5, 2) is None  # 6 .. 7
    assert schedule.first_within(8, 4) == 12
    assert isinstance(schedule.first_within(0, 4), int)


def test_every_n_fires_on_multiples_and_reads_back():
    schedule = sl.every(5)
    assert [step for step in range(1, 16) if schedule.fires(step)] == [5, 10, 15]
    assert repr(schedule) == "every(5)"
    assert schedule.period == 5


class Clock:
    """An epoch clock whose current epoch ``epoch`` ends at step ``end``."""

    def __init__(self, end, epoch):
        self.end, self.epoch = end, epoch

    def ending_at(self, step):
        return self.epoch if step == self.end else None

    def next_end(self, after):
        return (self.end, self.epoch) if self.end > after else None


def epoch_schedule(epochs, end, epoch):
    schedule = sl.every(epochs=epochs)
    schedule.attach(Clock(end, epoch))
    return schedule


def test_an_epoch_schedule_ends_a_call_at_its_epochs_last_step():
    schedule = epoch_schedule(2, end=10, epoch=4)
    assert schedule.first_within(5, 5) == 10  # 6 .. 10 holds the epoch's end
    assert schedule.first_within(5, 9) == 10
    assert schedule.first_within(5, 4) is None  # 6 .. 9 does not
    assert schedule.first_within(10, 5) is None  # the clock knows no later end
    assert schedule.fires(10) and not schedule.fires(9)


def test_an_epoch_schedule_skips_the_epochs_it_does_not_act_on():
    schedule = epoch_schedule(2, end=10, epoch=3)
    assert schedule.first_within(5, 5) is None
    assert not schedule.fires(10)
    assert epoch_schedule(3, end=10, epoch=3).first_within(0, 20) == 10


def test_an_epoch_schedule_without_a_trainer_says_so():
    expected = (
        "every(epochs=2) acts at the ends of epochs, but no Trainer with epochs runs it; give it "
        "to a callback of Trainer(..., epochs=n)"
    )
    assert message(lambda: sl.every(epochs=2).fires(3), RuntimeError) == expected
    assert message(lambda: sl.every(epochs=2).first_within(0, 5), RuntimeError) == expected


@pytest.mark.parametrize(
    ("call", "error", "expected"),
    [
        (
            lambda: sl.every(),
            TypeError,
            "every takes a number of steps or epochs=, exactly one of them; got n=None, "
            "epochs=None",
        ),
        (
            lambda: sl.every(2, epochs=3),
            TypeError,
            "every takes a number of steps or epochs=, exactly one of them; got n=2, epochs=3",
        ),
        (lambda: sl.every(epochs=0), ValueError, "every epochs must be an int >= 1, got 0"),
        (lambda: sl.every(0), ValueError, "every must be an int >= 1, got 0"),
        (lambda: sl.every(2.0), TypeError, "every must be an int, got 2.0 (float)"),
        (lambda: sl.at(), ValueError, "at() needs at least one step"),
        (
            lambda: sl.Every(sl.PrintLogger(), "5"),
            TypeError,
            "every must be an int or a steploop.Schedule (every(n), at(...)), got '5' (str)",
        ),
        (
            lambda: sl.Every(sl.PrintLogger(), True),
            TypeError,
            "every must be an int or a steploop.Schedule (every(n), at(...)), got True (bool)",
        ),
        (lambda: sl.Every(sl.PrintLogger(), 0), ValueError, "every must be an int >= 1, got 0"),
    ],
)
def test_bad_schedules_have_their_full_message(call, error, expected):
    assert message(call, error) == expected


def test_an_int_every_is_every_n_steps():
    wrapped = sl.Every(sl.PrintLogger(), 3)
    assert wrapped.schedule == sl.every(3)
    assert [step for step in range(1, 10) if wrapped.schedule.fires(step)] == [3, 6, 9]
