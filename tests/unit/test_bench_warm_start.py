"""bench/warm_start.py: the pair of runs it compares and how it reads them."""

from __future__ import annotations

from bench.warm_start import _first_reaching, report, run_pair


def test_evaluations_to_reach_count_from_one_and_none_when_never() -> None:
    assert _first_reaching([3.0, 2.0, 1.0], 2.0) == 2
    assert _first_reaching([3.0, 2.5], 1.0) is None


def test_a_pair_records_both_runs_and_the_report_judges_the_target() -> None:
    pair = run_pair("branin", 0, 3, 2)
    assert set(pair) == {"problem", "seed", "rounds", "batch", "target", "e_cold", "e_warm", "reached", "warm_best"}
    assert 1 <= pair["e_cold"] <= 6 and 1 <= pair["e_warm"] <= 7
    assert pair["reached"] == (pair["warm_best"] <= pair["target"])
    text = report([pair, {**pair, "seed": 1}])
    assert "| branin |" in text and ("| met |" in text or "| missed |" in text)
