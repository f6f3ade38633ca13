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


#: FusedResult lengths for ``Trainer(steps_per_call=K)``.
steps_per_call = st.integers(min_value=1, max_value=40)


@st.composite
def array_criteria(draw, gradients=True):
    """A factory of array-form stopping criteria (a fresh object per call) and its description."""
    import steploop as sl

    tol = draw(st.floats(min_value=1e-14, max_value=1e-2))
    patience = draw(st.integers(min_value=1, max_value=4))
    n = draw(st.integers(min_value=1, max_value=150))
    kinds = ["loss_below", "change", "early", "nan"] + (["gradient"] if gradients else [])
    kind = draw(st.sampled_from(kinds))
    combine = draw(st.sampled_from(["or", "and", "separate"]))

    def build():
        criterion = {
            "loss_below": lambda: sl.LossBelow(tol),
            "change": lambda: sl.LossChangeBelow(tol, patience=patience),
            "early": lambda: sl.EarlyStopping(patience=patience, min_delta=tol),
            "nan": sl.StopOnNaN,
            "gradient": lambda: sl.GradientNormBelow(tol),
        }[kind]()
        if combine == "or":
            return [criterion | sl.MaxSteps(n)]
        if combine == "and":
            return [(criterion & sl.LossBelow(1.0)) | sl.MaxSteps(n)]
        return [criterion, sl.MaxSteps(n)]

    return build
