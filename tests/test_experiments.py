"""The paper's experiments: the shared readings and verdicts (unit) and a tiny run of each experiment pipeline."""

from __future__ import annotations

import json
import math

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch

from gpe_pipeline.experiment_parameters import grid_values, positive_number, positive_numbers
from gpe_pipeline.paper import PAPER_SECONDS_PER_ITERATION, PAPER_TABLE2_DATASETS
from gpe_pipeline.params import ParameterError
from gpe_pipeline.pipelines.exp_encoder_stability.nodes import log_log_slope
from gpe_pipeline.pipelines.exp_gmm_latents.nodes import pairwise_distance_correlation
from gpe_pipeline.pipelines.exp_wallclock.nodes import seconds_to_threshold
from gpe_pipeline.pipelines.exp_wallclock.probes import largest_stable_rate, probe_outcome
from gpe_pipeline.readings import (
    diverged_step,
    encoder_stop,
    evaluations,
    first_crossing,
    first_step_at_or_below,
    last_step,
    last_value,
)
from gpe_pipeline.variants import combine
from gpe_pipeline.verdicts import HELD, below, claim, format_steps, iteration_bounds, ratio_bounds

from .conftest import kedro, make_project_copy


def test_combine_deep_merges_later_overrides_over_earlier_ones():
    shared = {"train_encoder": {"latent_dim": 2, "training": {"max_steps": 10, "lr": 0.1}}}
    method = {"train_encoder": {"method": "vae", "training": {"lr": 0.5}}}
    assert combine(shared, method) == {
        "train_encoder": {"latent_dim": 2, "method": "vae", "training": {"max_steps": 10, "lr": 0.5}}
    }
    assert shared["train_encoder"]["training"]["lr"] == 0.1, "inputs are not changed"


def test_curve_readings():
    history = pd.DataFrame({"step": [10, 20, 30], "validation_mse": [0.5, math.nan, 0.05]})
    assert first_step_at_or_below(history, "validation_mse", 0.1) == 30
    assert first_step_at_or_below(history, "validation_mse", 0.01) is None
    assert first_step_at_or_below(history, "missing", 1.0) is None
    assert last_value(history, "validation_mse") == 0.05 and math.isnan(last_value(history, "missing"))
    assert format_steps(1200, 4000) == "1,200" and format_steps(None, 4000) == "not within 4,000"
    crossing = first_crossing(history, "validation_mse", 0.1)
    assert crossing["step"] == 30 and crossing["validation_mse"] == 0.05
    assert first_crossing(history, "validation_mse", 0.01) is None and first_crossing(history, "missing", 1.0) is None
    assert last_step(history) == 30 and last_step(history.iloc[:0]) == 0 and last_step(None) == 0


def test_log_log_slope_recovers_a_power_law():
    x = [0.1, 0.01, 0.001]
    assert log_log_slope(x, [3 * v**2 for v in x]) == pytest.approx(2.0)
    assert math.isnan(log_log_slope([1.0], [1.0])) and math.isnan(log_log_slope([1.0, 1.0], [2.0, 3.0]))


def test_pairwise_distance_correlation_is_one_for_an_isometry_and_lower_for_a_warp():
    points = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    rotation = torch.tensor([[0.6, -0.8], [0.8, 0.6]])
    assert pairwise_distance_correlation(points @ rotation.T + 3.0, points) == pytest.approx(1.0)
    assert pairwise_distance_correlation(torch.tanh(3 * points), points) < 0.99


def test_a_claim_needs_a_known_verdict():
    assert claim("c", "p", "m", HELD)["verdict"] == HELD
    with pytest.raises(ValueError, match="unknown verdict"):
        claim("c", "p", "m", "probably")


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


def children_of_the_last_run(project) -> pd.DataFrame:
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["gpe_pipeline"])
    parent = runs[runs["tags.mlflow.parentRunId"].isna()].sort_values("start_time").iloc[-1]
    return runs[runs["tags.mlflow.parentRunId"] == parent.run_id]


def assert_identical_metric_names(children: pd.DataFrame) -> None:
    names = {
        frozenset(c for c in children.columns if c.startswith("metrics.") and row[c] == row[c]) for _, row in children.iterrows()
    }
    assert len(names) == 1, "every variant's child run has the same metric names"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_project_copy(tmp_path_factory.mktemp("experiments"))


def test_gmm_latents_compares_gpe_and_vae_on_the_experiments_own_gmm(project):
    kedro(project, "run", "--env", "test", "--pipeline=exp_gmm_latents", timeout=600)
    folder = project / "data" / "08_reporting" / "exp_gmm_latents"
    table = pd.read_csv(folder / "results.csv")
    assert list(table["method"]) == ["gpe", "vae"] and (table["latent_dim"] == 2).all()
    findings = json.loads((folder / "findings.json").read_text())
    gpe, vae = table["distance_correlation"]
    expected = "held" if gpe > 0.95 and vae < gpe else "did not hold"  # SPEC 4's criterion, as the report states it
    assert findings["experiment"] == "E1" and findings["claims"][0]["verdict"] == expected
    assert f"GPE {gpe:.3f}, VAE {vae:.3f}" in findings["claims"][0]["measured"]
    assert (folder / "figure.png").stat().st_size > 10_000
    metadata = json.loads((project / "data" / "03_primary" / "exp_gmm_latents" / "dataset_metadata.json").read_text())
    assert metadata["dataset"] == "gmm" and metadata["shape"] == [50]
    children = children_of_the_last_run(project)
    assert sorted(children["tags.variant"]) == ["gpe", "vae"] and set(children["tags.dataset"]) == {"gmm"}
    assert set(children["params.train_encoder.latent_dim"]) == {"2"}
    assert_identical_metric_names(children)


def test_grid_values_reads_every_slot_in_order():
    rates = grid_values({"high": 1e-1, "low": 1e-3, "mid": 1e-2}, ("low", "mid", "high"), "e.rates", increasing=True)
    assert list(rates.items()) == [("low", 1e-3), ("mid", 1e-2), ("high", 1e-1)]
    assert grid_values({"high": 2, "low": 1}, ("high", "low"), "e.levels", increasing=False) == {"high": 2.0, "low": 1.0}


@pytest.mark.parametrize(
    "values",
    [
        {"low": 1e-3, "mid": 1e-2},  # a slot missing
        {"low": 1e-3, "mid": 1e-2, "high": 1e-1, "top": 1.0},  # an unknown slot
        {"low": 1e-3, "mid": 1e-1, "high": 1e-2},  # out of order
        {"low": 1e-3, "mid": 1e-3, "high": 1e-2},  # not strictly
        {"low": 0, "mid": 1e-2, "high": 1e-1},
        {"low": "1e-3", "mid": 1e-2, "high": 1e-1},
        [1e-3, 1e-2, 1e-1],
        None,
    ],
)
def test_grid_values_refuses_a_bad_grid_naming_the_key(values):
    with pytest.raises(ParameterError, match=r"^e\.rates must map \['low', 'mid', 'high'\] to positive numbers, increasing"):
        grid_values(values, ("low", "mid", "high"), "e.rates", increasing=True)


def test_positive_numbers_refuse_what_is_not_finite_positive_and_ordered_naming_the_key():
    assert positive_number(2, "e.t", "must be positive") == 2.0
    assert positive_numbers((3, 2.5), "e.ts", "must decrease", order="decreasing", at_least=2) == [3.0, 2.5]
    assert positive_numbers([5, 1], "e.s", "must be steps", integers=True) == [5, 1]
    for value in (math.inf, math.nan, 0, -1.0, True, "1", None):
        with pytest.raises(ParameterError, match=r"^e\.t must be positive, got .*: change e\.t in the parameters$"):
            positive_number(value, "e.t", "must be positive")
    for values, options in (
        ([3.0, math.inf], {}),
        ([], {}),
        ([1.0], {"at_least": 2}),
        ([1.0, 2.0], {"order": "decreasing"}),
        ([2.0, 2.0], {"order": "increasing"}),
        ([1.5], {"integers": True}),
        (1.0, {}),
    ):
        with pytest.raises(ParameterError, match=r"^e\.ts must decrease, got "):
            positive_numbers(values, "e.ts", "must decrease", **options)


def test_evaluations_keep_measured_finite_rows_before_a_step():
    history = pd.DataFrame({"step": [5, 10, 15, 20, 25], "a": [np.nan, 1.0, np.inf, 3.0, 4.0], "b": [0.5, 2.0, 2.0, np.nan, 5.0]})
    assert evaluations(history, "a", "b")["step"].tolist() == [10, 25]
    assert evaluations(history, "a", before_step=25)["a"].tolist() == [1.0, 3.0]
    assert evaluations(history, "missing").empty and list(evaluations(history, "missing").columns) == ["step", "missing"]


def test_diverged_step_and_encoder_stop():
    history = pd.DataFrame({"step": [50, 100], "validation_gme": [0.3, 0.1], "diverged_step": [np.nan, 62.0]})
    assert diverged_step(history) == 62 and diverged_step(history.drop(columns="diverged_step")) is None
    assert encoder_stop(history) == {"steps": 100, "gme": 0.1}


def test_iteration_bounds_and_comparisons():
    assert iteration_bounds(300, 4000) == (300, 300) and iteration_bounds(None, 4000) == (4001, math.inf)
    reached, unreached = iteration_bounds(300, 4000), iteration_bounds(None, 4000)
    assert below(reached, unreached) is True and below(unreached, reached) is False
    assert below(unreached, unreached) is None and below(reached, reached) is False
    assert ratio_bounds((600, 600), (300, 300)) == (2.0, 2.0)
    assert ratio_bounds(unreached, reached) == (4001 / 300, math.inf)
    assert ratio_bounds(reached, unreached) == (0.0, 300 / 4001)
    # A ratio known only as > 13.3 is above 5 but cannot be compared with 20.
    assert below((5.0, 5.0), ratio_bounds(unreached, reached)) is True
    assert below((20.0, 20.0), ratio_bounds(unreached, reached)) is None
