"""Every(callback, schedule): what reaches the wrapped callback (arguments included), where a
live wrapped callback ends fused calls, and its checks at construction."""

import pytest

import steploop as sl
from tests.helpers import batch_replay, quadratic


class Recorder(sl.Callback):
    """Keeps every hook call with its arguments."""

    may_stop = False
    needs_live_state = False

    def __init__(self):
        self.calls = []
        self.restored = None
        self.validated = []

    def validate(self, trainer):
        self.validated.append(trainer)

    def on_epoch_begin(self, trainer, epoch):
        self.calls.append(("epoch_begin", trainer, epoch))

    def on_step_begin(self, trainer, step):
        self.calls.append(("step_begin", trainer, step))

    def on_epoch_end(self, trainer, epoch):
        self.calls.append(("epoch_end", trainer, epoch))

    def on_error(self, trainer, error):
        self.calls.append(("error", trainer, error))

    def get_state(self):
        return {"n": len(self.calls)}

    def set_state(self, state):
        self.restored = state


def test_every_hands_hooks_their_arguments_on_its_steps_and_at_every_epoch():
    recorder = Recorder()
    data = [1.0, 2.0, 3.0]
    trainer = sl.Trainer(
        batch_replay([]), [sl.Every(recorder, 2)], data=data, epochs=2, steps_per_call=1
    )
    trainer.run()
    assert recorder.validated == [trainer]
    assert recorder.calls == [
        ("epoch_begin", trainer, 1),
        ("step_begin", trainer, 2),
        ("epoch_end", trainer, 1),
        ("epoch_begin", trainer, 2),
        ("step_begin", trainer, 4),
        ("step_begin", trainer, 6),
        ("epoch_end", trainer, 2),
    ]


class Boom(sl.Callback):
    may_stop = False

    def on_step_end(self, trainer, record):
        raise RuntimeError("boom")


def test_every_hands_on_error_the_error():
    recorder = Recorder()
    trainer = sl.Trainer(quadratic(), [sl.Every(recorder, 5), Boom()], steps_per_call=1)
    with pytest.raises(RuntimeError, match="boom") as caught:
        trainer.run(max_steps=3)
    assert recorder.calls == [("error", trainer, caught.value)]


def test_every_restores_the_wrapped_callbacks_state():
    recorder = Recorder()
    wrapped = sl.Every(recorder, 3)
    wrapped.set_state({"n": 7})
    assert recorder.restored == {"n": 7}


class Refuses(sl.Callback):
    may_stop = False

    def validate(self, trainer):
        return f"refuses {trainer!r}"


def test_every_asks_the_wrapped_callback_to_validate_the_trainer():
    with pytest.raises(TypeError) as caught:
        sl.Trainer(quadratic(), [sl.Every(Refuses(), 2), sl.MaxSteps(3)])
    assert str(caught.value) == (
        "callbacks[0] Every(callback=Refuses, every=2) refuses <Trainer GradientDescent at step 0>"
    )


class BadSignature(sl.Callback):
    def on_step_end(self, trainer):
        pass


def test_every_checks_the_wrapped_hooks_signatures_naming_the_callback():
    with pytest.raises(TypeError) as caught:
        sl.Every(BadSignature(), 2)
    assert str(caught.value) == (
        "BadSignature.on_step_end must accept (trainer, record); its signature is (trainer)"
    )


class LiveAt(sl.Callback):
    """Needs live state at the steps of ``schedule``."""

    may_stop = False
    needs_live_state = True

    def __init__(self, *steps):
        self.schedule = sl.at(*steps)

    def on_step_end(self, trainer, record):
        pass


@pytest.mark.parametrize(
    ("steps", "after", "count", "expected"),
    [
        ((6,), 0, 10, 6),  # 3 is on the schedule but the callback is not live there
        ((3, 6), 0, 10, 3),
        ((9,), 0, 7, None),  # 9 is past the window
        ((9,), 0, 9, 9),
        ((4, 5), 0, 10, None),  # live only off the schedule
        ((6,), 6, 10, None),
    ],
)
def test_every_ends_a_call_where_its_schedule_meets_a_live_step(steps, after, count, expected):
    wrapped = sl.Every(LiveAt(*steps), 3)
    assert wrapped.next_sync_step(after, count) == expected
