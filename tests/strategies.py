"""Hypothesis strategies shared by the tests."""

from hypothesis import strategies as st

#: Learning rates of plain gradient descent on (x-4)**2 that converge: |1 - 2 lr| < 1, i.e. the
#: open interval (0, 1); its ends are cut at 1e-3 so a run needs at most ~10,000 steps.
learning_rates = st.floats(min_value=1e-3, max_value=1 - 1e-3, allow_nan=False)

#: Learning rates for float32 TensorFlow runs, away from the slow ends of (0, 1).
tf_learning_rates = st.floats(min_value=0.05, max_value=0.95, allow_nan=False)

#: Starting points of the quadratic.
starts = st.floats(min_value=-50.0, max_value=50.0, allow_nan=False)


@st.composite
def pieces(draw, total_max=60):
    """A list of ``max_steps`` values for successive ``run`` calls (some may be 0)."""
    return draw(st.lists(st.integers(min_value=0, max_value=total_max), min_size=1, max_size=8))
