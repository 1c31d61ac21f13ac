"""Helpers the experiments share (gpe_pipeline.experiments), each on hand-made values."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from gpe_pipeline.experiments import (
    PAPER_SECONDS_PER_ITERATION,
    PAPER_TABLE2_DATASETS,
    largest_stable_rate,
    probe_outcome,
    seconds_to_threshold,
)


def probe_history(losses: list[float], **extra) -> pd.DataFrame:
    """A probe's history: one record per logging window of 10 steps."""
    return pd.DataFrame({"step": [10 * (i + 1) for i in range(len(losses))], "train_loss": losses, **extra})


def test_a_probe_whose_loss_falls_steadily_is_stable():
    outcome = probe_outcome(probe_history([1.0, 0.8, 0.7, 0.6, 0.5, 0.45, 0.4, 0.35, 0.3, 0.2]), min_decrease=0.1)
    assert outcome["outcome"] == "stable"
    assert outcome["first_fifth_loss"] == pytest.approx(0.9) and outcome["last_fifth_loss"] == pytest.approx(0.25)
    assert outcome["diverged_step"] is None


def test_a_probe_whose_loss_barely_falls_is_unstable_and_says_by_how_much():
    outcome = probe_outcome(probe_history([1.0, 1.0, 0.99, 0.98, 0.97, 0.96, 0.95, 0.95, 0.95, 0.95]), min_decrease=0.1)
    assert outcome["outcome"] == "unstable"
    assert outcome["detail"] == "last fifth's loss 0.95x the first fifth's; stable needs <= 0.90x"


def test_a_probe_that_blows_up_on_the_way_is_unstable_even_if_it_ends_low():
    losses = [1.0, 0.8, 0.6, 3.0, 0.5, 0.4, 0.3, 0.2, 0.2, 0.1]
    outcome = probe_outcome(probe_history(losses), min_decrease=0.1)
    assert outcome["outcome"] == "unstable" and outcome["detail"] == "loss rose to 3.33x the first fifth's by step 40"


def test_a_probe_can_require_a_term_of_the_loss_to_fall_as_well():
    history = probe_history(
        [1.0, 0.9, 0.8, 0.7, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6], train_reconstruction=[0.7] * 9 + [0.69], train_kl=[0.3] * 10
    )
    assert probe_outcome(history, min_decrease=0.1)["outcome"] == "stable"
    outcome = probe_outcome(history, min_decrease=0.1, also=("train_reconstruction",))
    assert outcome["outcome"] == "unstable"
    assert outcome["detail"] == "last fifth's reconstruction 0.99x the first fifth's; stable needs <= 0.90x"
    assert outcome["first_fifth_loss"] == pytest.approx(0.95), "the fifths reported are the loss's"


def test_a_diverged_probe_records_its_step():
    history = probe_history([1.0, 0.5, math.nan], diverged_step=[math.nan, math.nan, 27.0])
    outcome = probe_outcome(history, min_decrease=0.1)
    assert (outcome["outcome"], outcome["detail"], outcome["diverged_step"]) == ("diverged", "diverged at step 27", 27)
    assert probe_outcome(probe_history([1.0, math.inf]), 0.1)["outcome"] == "unstable"


def test_the_largest_stable_rate_is_chosen_else_the_smallest():
    assert largest_stable_rate({1e-4: "stable", 1e-3: "stable", 1e-2: "diverged"}) == (1e-3, "the largest stable rate")
    assert largest_stable_rate({1e-3: "unstable", 1e-2: "diverged"}) == (1e-3, "no rate was stable: the smallest probed")
    with pytest.raises(ValueError):
        largest_stable_rate({})


def test_seconds_to_threshold_reads_the_first_crossing():
    curve = pd.DataFrame({"seconds": [1.0, 2.0, 3.0, 4.0], "value": [0.5, 0.2, 0.3, 0.1]})
    assert seconds_to_threshold(curve, 0.2) == 2.0 and seconds_to_threshold(curve, 0.05) is None


def test_the_papers_table_2_has_every_trainer_on_every_dataset():
    assert len(PAPER_TABLE2_DATASETS) == 4
    assert all(len(row) == 4 for row in PAPER_SECONDS_PER_ITERATION.values())
    assert PAPER_SECONDS_PER_ITERATION["GPE decoder"][3] == 0.588 and PAPER_SECONDS_PER_ITERATION["VAE"][3] == 0.705
