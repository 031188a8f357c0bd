"""The optimizer benchmark's scoring: Bayesmark-style normalization and the paired bootstrap."""

from __future__ import annotations

from typing import Any

from bench.optimizers import common_seeds, report

OPTIMUM = 0.397887  # Branin's, as bench.problems knows it


def run(optimizer: str, seed: int, best: float) -> dict[str, Any]:
    # two rounds of two; the run's best loss is reached in the last round
    return {"problem": "branin", "optimizer": optimizer, "seed": seed, "rounds": 2, "batch": 2,
            "losses": [best + 5.0, best + 3.0, best + 1.0, best], "suggest_s": 0.0}


def table_row(text: str, first_cell: str, which: int = 0) -> list[str]:
    """The cells of the ``which``-th table row whose first cell is ``first_cell``."""
    lines = [ln for ln in text.splitlines() if ln.startswith(f"| {first_cell} |")]
    return [c.strip() for c in lines[which].strip("|").split("|")]


def test_scores_put_the_optimum_at_100_and_random_at_0() -> None:
    results = [run("bayes", s, OPTIMUM) for s in range(5)] + [run("random", s, OPTIMUM + 2.0) for s in range(5)]
    text = report(results, None)
    header = table_row(text, "problem")
    row = table_row(text, "branin")
    assert float(row[header.index("bayes")]) == 100.0
    assert float(row[header.index("random")]) == 0.0
    assert table_row(text, "bayes")[1] == "100.0"  # bootstrap table: bayes' mean
    # bayes − random is +100 in every resample
    assert table_row(text, "random")[3] == "+100.0 [+100.0, +100.0]"
    assert table_row(text, "branin", which=-1) == ["branin", "5/0/0"]  # wins/ties/losses vs random


def test_bootstrap_interval_covers_a_noisy_difference() -> None:
    results = []
    for s in range(10):
        results.append(run("random", s, OPTIMUM + 2.0))
        results.append(run("bayes", s, OPTIMUM + (0.2 if s % 2 else 1.0)))
        results.append(run("other", s, OPTIMUM + 0.6))
    text = report(results, None)
    mean, interval = table_row(text, "other")[3].split(" ", 1)
    lo, hi = (float(v) for v in interval.strip("[]").split(","))
    assert float(mean) == 0.0  # (90 + 50) / 2 − 70
    assert lo < 0.0 < hi


def test_unpaired_seeds_get_no_bootstrap_and_common_seeds_pairs_them() -> None:
    results = [run("bayes", s, OPTIMUM) for s in (0, 1, 2)] + [run("random", s, OPTIMUM + 2.0) for s in (1, 2, 3)]
    assert "bootstrap" not in report(results, None)
    paired = common_seeds(results)
    assert sorted({r["seed"] for r in paired}) == [1, 2]
    assert "bootstrap" in report(paired, None)
