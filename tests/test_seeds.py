"""Seeds as a dimension of every experiment: the seed layer, the combined verdicts and tables, a real 2-seed run."""

from __future__ import annotations

import json
import math

import matplotlib.pyplot as plt
import mlflow
import pandas as pd
import pytest

from gpe_pipeline.params import ParameterError
from gpe_pipeline.plotting import overlay_seeds
from gpe_pipeline.seed_summary import combine_claims, combine_seeds, combined_verdict, spread_for_report, summary_table
from gpe_pipeline.variants import check_seed_counts, recipe, run_parameters, seed_count, split_seeded
from gpe_pipeline.verdicts import HELD, NOT_HELD, NOT_MEASURABLE, claim

from .conftest import kedro, make_project_copy, with_value


@pytest.mark.parametrize(
    "verdicts, combined",
    [
        ([HELD, HELD, NOT_HELD], "mixed (2 of 3)"),
        ([HELD, HELD, HELD], HELD),
        ([NOT_HELD, NOT_HELD, NOT_HELD], NOT_HELD),
        ([NOT_MEASURABLE, NOT_MEASURABLE], NOT_MEASURABLE),
        ([NOT_HELD, NOT_MEASURABLE], "mixed (0 of 2)"),  # failed where measured, but not measured everywhere
        ([HELD, NOT_MEASURABLE, HELD], "mixed (2 of 3)"),
        ([HELD], HELD),
    ],
)
def test_the_combined_verdict_rule(verdicts, combined):
    assert combined_verdict(verdicts) == combined


def test_a_claim_that_holds_in_two_of_three_seeds_is_mixed_with_each_seeds_verdict_beside_it():
    def findings(verdict, measured):
        return [claim("GPE sooner", "Fig. 10", measured, verdict, "rule"), claim("second", "p", "m", NOT_MEASURABLE)]

    combined = combine_claims([findings(HELD, "10 s"), findings(NOT_HELD, "30 s"), findings(HELD, "12 s")])
    assert combined[0]["verdict"] == "mixed (2 of 3)"
    assert combined[0]["seed_verdicts"] == [HELD, NOT_HELD, HELD]
    assert combined[0]["seed_measured"] == ["10 s", "30 s", "12 s"]
    assert combined[0]["measured"] == "seed 0: 10 s; seed 1: 30 s; seed 2: 12 s"
    assert combined[1]["verdict"] == NOT_MEASURABLE
    with pytest.raises(ValueError, match="claim 0 differs between seeds"):
        combine_claims([findings(HELD, "a"), [claim("other", "p", "m", HELD), claim("second", "p", "m", HELD)]])
    with pytest.raises(ValueError, match="the same claims"):
        combine_claims([findings(HELD, "a"), findings(HELD, "a")[:1]])


def test_the_summary_over_seeds_is_each_rows_mean_min_and_max():
    seed_0 = pd.DataFrame({"variant": ["a", "b"], "steps": [100, 10], "reached": [True, False], "mse": [0.5, math.nan]})
    seed_1 = pd.DataFrame({"variant": ["a", "b"], "steps": [300, 20], "reached": [True, True], "mse": [0.1, 0.2]})
    summary = summary_table([seed_0, seed_1])
    a, b = summary.iloc[0], summary.iloc[1]
    assert (a["variant"], a["steps_mean"], a["steps_min"], a["steps_max"], a["reached"]) == ("a", 200, 100, 300, "2 of 2")
    assert (b["steps_mean"], b["reached"], b["mse_mean"], b["mse_finite"]) == (15, "1 of 2", pytest.approx(0.2), 1)
    shown = spread_for_report(summary)
    assert list(shown["steps"]) == ["200 [100, 300]", "15 [10, 20]"]
    assert shown["mse"][1] == "0.2 (1 of 2 finite)"


def test_rows_of_a_repeated_first_column_are_matched_by_occurrence():
    seed_0 = pd.DataFrame({"variant": ["gpe", "gpe", "vae"], "iterations": [250, 500, 250], "fd": [1.0, 2.0, 3.0]})
    seed_1 = pd.DataFrame({"variant": ["gpe", "gpe", "vae"], "iterations": [250, 500, 250], "fd": [3.0, 4.0, 5.0]})
    summary = summary_table([seed_0, seed_1])
    assert list(summary["fd_mean"]) == [2.0, 3.0, 4.0] and list(summary["iterations_mean"]) == [250, 500, 250]


def test_combine_seeds_keeps_every_row_with_its_seed_and_draws_every_seed():
    def one_seed(seed):
        figure, axis = plt.subplots()
        axis.plot([1, 2, 3], [seed, seed + 1, seed + 2], label="curve")
        table = pd.DataFrame({"variant": ["a"], "value": [float(seed)]})
        return table, figure, {"experiment": "E0", "claims": [claim("c", "p", f"m{seed}", HELD if seed else NOT_HELD)]}

    outputs = {}
    for seed in range(3):
        table, figure, findings = one_seed(seed)
        outputs |= {f"seed_{seed}__table": table, f"seed_{seed}__figure": figure, f"seed_{seed}__findings": findings}
    table, summary, figure, findings = combine_seeds(**outputs)
    assert list(table.columns) == ["seed", "variant", "value"] and list(table["seed"]) == [0, 1, 2]
    assert summary.iloc[0]["value_mean"] == 1.0
    assert len(figure.axes[0].get_lines()) == 3  # seed 0's curve and the other two seeds' faint copies
    assert findings["seeds"] == 3 and findings["claims"][0]["verdict"] == "mixed (2 of 3)"
    assert [f["claims"][0]["measured"] for f in findings["per_seed"]] == ["m0", "m1", "m2"]
    with pytest.raises(ValueError, match="seeds must be 0 .. n - 1"):
        combine_seeds(**{key.replace("seed_0", "seed_5"): value for key, value in outputs.items()})


def test_overlay_keeps_the_first_seeds_legend_and_copies_the_others_lines():
    figures = []
    for seed in range(2):
        figure, (left, right) = plt.subplots(1, 2)
        left.plot([0, 1], [seed, seed], color="C1", label="left")
        left.legend()
        right.plot([0, 1], [1, 2 + seed], marker="o")
        figures.append(figure)
    combined = overlay_seeds(figures)
    left, right = combined.axes[:2]
    assert [list(line.get_ydata()) for line in left.get_lines()] == [[0, 0], [1, 1]]
    assert left.get_lines()[1].get_alpha() == 0.35 and left.get_lines()[1].get_color() == "C1"
    assert [t.get_text() for t in left.get_legend().get_texts()] == ["left"]
    assert right.get_lines()[1].get_marker() == "o"


def test_seed_k_shifts_every_random_seed_of_the_stages_and_nothing_else(params):
    base = recipe("exp_generation_budget.gpe").sections(params)
    seeded = recipe("exp_generation_budget.seed_2.gpe").sections(params)
    for section in ("train_encoder", "train_decoder", "train_flow"):
        assert seeded[section]["training"]["seed"] == base[section]["training"]["seed"] + 2
    assert seeded["evaluate"]["seed"] == base["evaluate"]["seed"] + 2
    assert seeded["evaluate"]["sampling"]["seed"] == base["evaluate"]["sampling"]["seed"] + 2
    assert seeded["evaluate"]["classifier"] == base["evaluate"]["classifier"]  # the measuring instrument stays
    assert seeded["train_encoder"]["training"]["checkpoint_path"].endswith("exp_generation_budget.seed_2.gpe/encoder.pt")
    unchanged = {k: v for k, v in seeded["train_encoder"].items() if k != "training"}
    assert unchanged == {k: v for k, v in base["train_encoder"].items() if k != "training"}
    seed_0 = recipe("exp_generation_budget.seed_0.gpe").sections(params)
    for section in ("train_encoder", "train_decoder", "train_flow"):  # seed 0 is the unseeded run but for its folder
        seed_0[section]["training"]["checkpoint_path"] = base[section]["training"]["checkpoint_path"]
    assert seed_0 == base
    assert split_seeded("exp_generation_budget.seed_2.gpe") == ("exp_generation_budget", 2, "gpe")
    assert split_seeded("compare.vae") is None and recipe("exp_decoder_vs_gme.seed_2") is None


def test_a_variants_own_overrides_apply_to_every_seed(params):
    changed = with_value(params, "exp_generation_budget.gpe.train_encoder.training.lr", 0.5)
    for seed in range(3):
        sections = recipe(f"exp_generation_budget.seed_{seed}.gpe").sections(changed)
        assert sections["train_encoder"]["training"]["lr"] == 0.5
    bad = with_value(params, "exp_generation_budget.gpe.train_encoderr", {})
    with pytest.raises(ParameterError, match=r"exp_generation_budget.gpe.train_encoderr is not a stage section"):
        recipe("exp_generation_budget.seed_1.gpe").sections(bad)


def test_the_seed_count_and_its_checks(params):
    assert seed_count(params, "exp_wallclock") == 3  # conf/base: paper_report.seeds
    assert seed_count(with_value(params, "exp_wallclock.seeds", 5), "exp_wallclock") == 5
    assert seed_count({}, "exp_wallclock") == 1
    with pytest.raises(ParameterError, match=r"paper_report.seeds must be an integer >= 1"):
        seed_count(with_value(params, "paper_report.seeds", 0), "exp_wallclock")
    with pytest.raises(ParameterError, match=r"exp_wallclock.seeds must be an integer >= 1"):
        seed_count(with_value(params, "exp_wallclock.seeds", "three"), "exp_wallclock")
    namespaces = {f"exp_wallclock.seed_{k}.gpe" for k in range(3)}
    check_seed_counts(params, namespaces)
    with pytest.raises(ParameterError, match="exp_wallclock asks for 2 seeds but its pipeline was built with 3"):
        check_seed_counts(with_value(params, "exp_wallclock.seeds", 2), namespaces)
    assert set(run_parameters(params, namespaces)) == namespaces


def test_a_two_seed_experiment_run_gives_every_seed_its_rows_verdicts_and_child_runs(tmp_path):
    project = make_project_copy(tmp_path)
    kedro(project, "run", "--env", "test", "--pipeline=exp_decoder_vs_gme", "--params", "paper_report.seeds=2")
    reporting = project / "data" / "08_reporting" / "exp_decoder_vs_gme"
    table = pd.read_csv(reporting / "results.csv")
    assert list(table["seed"]) == [0, 0, 0, 1, 1, 1]
    assert table.groupby("seed")["variant"].apply(list).tolist() == [["gme_high", "gme_mid", "gme_low"]] * 2
    # Different seeds train different networks: the encoders' reached GME differs between the seeds.
    assert table.loc[table["seed"] == 0, "gme_reached"].tolist() != table.loc[table["seed"] == 1, "gme_reached"].tolist()
    summary = pd.read_csv(reporting / "summary.csv")
    assert list(summary["seeds"]) == [2, 2, 2]
    findings = json.loads((reporting / "findings.json").read_text())
    assert findings["seeds"] == 2 and len(findings["claims"][0]["seed_verdicts"]) == 2
    assert findings["claims"][0]["verdict"] == combined_verdict(findings["claims"][0]["seed_verdicts"])
    for seed in range(2):
        assert json.loads((reporting / f"seed_{seed}" / "findings.json").read_text())["claims"]
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["gpe_pipeline"])
    children = runs[runs["tags.variant_group"].fillna("").str.startswith("gme_levels.seed_")]
    # E3's trainings are the level study's: per seed one encoder and a decoder per level (conf/test: three levels).
    assert sorted(zip(children["tags.seed"], children["tags.variant"], strict=True)) == sorted(
        (str(seed), name) for seed in range(2) for name in ("encoder", "level_0", "level_1", "level_2")
    )


def test_the_report_counts_the_level_study_and_shows_each_seeds_verdict():
    from gpe_pipeline.pipelines.paper_report.nodes import write_report

    table = pd.DataFrame({"variant": ["a"], "value": [1.0]})
    findings = {
        "experiment": "E3",
        "title": "t",
        "seeds": 2,
        "claims": [
            {**claim("c", "p", "seed 0: x; seed 1: y", HELD, "rule"), "verdict": "mixed (1 of 2)",
             "seed_verdicts": [HELD, NOT_HELD], "seed_measured": ["x", "y"]}
        ],
    }
    seconds = {"exp_decoder_vs_gme.seed_0.summarise_decoder_vs_gme": 1.0, "gme_levels.seed_0.encoder.train_encoder": 20.0}
    report = write_report(
        {"node_seconds": seconds, "command": "kedro run", "machine": {}},
        {"ingest": {}},
        {"dataset": "digits", "shape": [1, 8, 8], "num_train": 10, "num_validation": 2, "num_heldout": 2},
        exp_decoder_vs_gme__findings=findings,
        exp_decoder_vs_gme__summary=summary_table([table, table]),
    )
    assert "| wall-clock | 21 s for the experiments (E3 1 s, the trainings E3, E4 and E6 share 20 s) |\n| seeds | E3 2 |" in report
    assert "| E3 | c | p | **mixed (1 of 2)** | held, did not hold | rule |" in report
    assert "- c: seed 0 (held): x; seed 1 (did not hold): y" in report
    assert "## Limits of this run" in report and "besides the 20 s of the trainings E3, E4 and E6 share, which it reads" in report
