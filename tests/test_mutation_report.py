"""tools/mutation_report.py: the score counts a listed equivalent only where it survived, and the
listed names that did not survive are named (mutmut renames a function's mutants on an edit)."""

import importlib.util
import pathlib

TOOL = pathlib.Path(__file__).resolve().parent.parent / "tools" / "mutation_report.py"
spec = importlib.util.spec_from_file_location("mutation_report", TOOL)
report_tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(report_tool)

BY_MODULE = {"a.py": {"m.x_f__mutmut_1": "survived", "m.x_f__mutmut_2": "killed"}}


def test_a_listed_equivalent_counts_only_where_it_survived():
    """The killed mutant stays killed although listed; the surviving listed one is equivalent."""
    skip = {"m.x_f__mutmut_1": "why", "m.x_f__mutmut_2": "stale"}
    _, total = report_tool.report(BY_MODULE, skip)
    assert (total["equivalent"], total["killed"], total["survived"]) == (1, 1, 0)


def test_listed_names_that_did_not_survive_are_named():
    """A listed name that was killed, or that no longer exists, is stale; a survivor is not."""
    skip = {"m.x_f__mutmut_1": "", "m.x_f__mutmut_2": "", "m.x_g__mutmut_9": ""}
    assert report_tool.stale_names(BY_MODULE, skip) == ["m.x_f__mutmut_2", "m.x_g__mutmut_9"]
