"""A stateful test of the hook lifecycle: any mix of runs, iterate-and-break, stops and errors
keeps the hooks well ordered and the step count, history and result consistent."""

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import steploop as sl
from tests.helpers import Recorder, quadratic


class Failing(Exception):
    pass


class Chaos(sl.Callback):
    """Stops or raises at steps chosen by the state machine."""

    def __init__(self):
        self.stop_at = set()
        self.raise_at = set()

    def on_step_end(self, trainer, record):
        if record.step in self.raise_at:
            raise Failing(record.step)
        if record.step in self.stop_at:
            trainer.stop(f"chaos at {record.step}")


class Lifecycle(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.events = []
        self.chaos = Chaos()
        self.trainer = sl.Trainer(quadratic(0.05), callbacks=[self.chaos, Recorder(self.events)])

    def _drive(self, action):
        """Run ``action``; an error planted by ``fail_later`` must surface unchanged."""
        try:
            action()
        except Failing as error:
            assert error.args[0] == self.trainer.step
            assert self.trainer.result.status == "error"
            self.chaos.raise_at.discard(error.args[0])

    @rule(k=st.integers(0, 6))
    def run_some(self, k):
        before = self.trainer.step
        self._drive(lambda: self.trainer.run(max_steps=k))
        assert before <= self.trainer.step <= before + k
        assert self.trainer.result.steps == self.trainer.step

    @rule(j=st.integers(1, 5))
    def iterate_and_break(self, j):
        before = self.trainer.step

        def loop():
            for record in self.trainer.iterate():
                if record.step - before >= j:
                    break

        self._drive(loop)
        assert self.trainer.step <= before + j
        assert self.trainer.result.status in ("stopped", "error")

    @rule(offset=st.integers(1, 4))
    def stop_later(self, offset):
        self.chaos.stop_at.add(self.trainer.step + offset)

    @rule(offset=st.integers(1, 3))
    def fail_later(self, offset):
        self.chaos.raise_at.add(self.trainer.step + offset)

    @invariant()
    def hooks_are_well_ordered(self):
        depth, last_step, phase = 0, 0, None
        for _, hook, argument in self.events:
            if hook == "run_begin":
                assert depth == 0
                depth = 1
            elif hook == "run_end":
                assert depth == 1
                depth = 0
            elif hook == "step_begin":
                assert depth == 1 and argument == last_step + 1 and phase != "begun"
                phase = "begun"
            elif hook == "step_end":
                assert depth == 1 and argument == last_step + 1 and phase == "begun"
                last_step, phase = argument, "ended"
            elif hook == "error":
                assert depth == 1
                if phase == "begun":  # the failing step ran: its step_end was cut short
                    last_step, phase = last_step + 1, "ended"
        assert depth == 0
        assert last_step == self.trainer.step

    @invariant()
    def history_matches_the_step_count(self):
        assert self.trainer.history.rows == self.trainer.step
        if self.trainer.step:
            assert self.trainer.history["step"].tolist() == list(range(1, self.trainer.step + 1))


TestLifecycle = Lifecycle.TestCase
