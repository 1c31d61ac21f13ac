"""E6 (exp_generation_budget, Fig. 11): a tiny real run, and the summary's computations on hand-made inputs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch
import yaml

from gpe_pipeline import evaluation
from gpe_pipeline.core.metrics import frechet_distance
from gpe_pipeline.core.models import NoModel, build_model
from gpe_pipeline.params import ParameterError
from gpe_pipeline.pipelines.exp_generation_budget.nodes import (
    FLOOR,
    NO_FLOW,
    generation_verdict,
    matched_iterations,
    no_flow_claim,
    snapshot_velocity,
    summarise_generation_budget,
    which_lower,
)
from gpe_pipeline.pipelines.exp_generation_budget.pipeline import EXPERIMENT, create_pipeline
from gpe_pipeline.validation import validate_run
from gpe_pipeline.variants import run_parameters
from gpe_pipeline.verdicts import HELD, NOT_HELD, NOT_MEASURABLE

from ..conftest import environment_config, kedro, make_project_copy, with_value

BASE = Path(__file__).parents[2] / "conf" / "base"
SNAPSHOTS = [20, 40, 60]  # conf/test's snapshot steps; the flow's max_steps there is 60


@pytest.fixture(scope="module")
def experiment_run(tmp_path_factory) -> tuple[Path, str]:
    """A project copy after one tiny `kedro run --pipeline=exp_generation_budget`, without Inception weights."""
    project = make_project_copy(tmp_path_factory.mktemp("e6"))
    torch_home = tmp_path_factory.mktemp("torch_home")  # empty: FID must be skipped whatever this machine holds
    result = kedro(project, "run", "--env", "test", f"--pipeline={EXPERIMENT}", timeout=900, env={"TORCH_HOME": str(torch_home)})
    return project, result.output


def test_the_run_writes_distances_against_flow_iterations_with_the_baseline_and_the_floor(experiment_run):
    project, output = experiment_run
    folder = project / "data" / "08_reporting" / EXPERIMENT
    assert (folder / "figure.png").stat().st_size > 10_000
    table = pd.read_csv(folder / "results.csv")
    assert list(table["variant"]) == ["gpe"] * 3 + ["vae"] * 3 + [NO_FLOW, FLOOR]
    assert list(table["flow_iterations"][:6]) == SNAPSHOTS * 2 and table["flow_iterations"][6] == 0
    for kind in ("fd_classifier", "fd_pixel"):
        assert (table[f"{kind}_ci_low"] <= table[kind]).all() and (table[kind] <= table[f"{kind}_ci_high"]).all()
    assert table["kd_classifier_std"].notna().all()
    assert not [c for c in table.columns if c.startswith(("fid", "kid"))], "no Inception weights: no FID columns"
    # The snapshot at max_steps is the final flow: its row is read from the method's evaluation_metrics, and so is
    # the floor (the same in both methods' files); the earlier snapshots are sampled and measured by the summary.
    distance_columns = [c for c in table.columns if c.startswith(("fd_", "kd_"))]
    assert len(distance_columns) == 10  # fd and kd of classifier and pixel features, with intervals and stds
    floor = table[table["variant"] == FLOOR].iloc[0]
    for method in ("gpe", "vae"):
        metrics = json.loads(
            (project / "data" / "08_reporting" / f"{EXPERIMENT}.seed_0.{method}" / "evaluation_metrics.json").read_text()
        )
        rows = table[table["variant"] == method].set_index("flow_iterations")
        for column in distance_columns:
            suffix = next((end for end in ("_ci_low", "_ci_high", "_std") if column.endswith(end)), "")
            kind = column.removesuffix(suffix)
            assert rows.loc[60, column] == metrics[f"{kind}_gen{suffix}"], column
            assert floor[column] == metrics[f"{kind}_floor{suffix}"], column
        for step in SNAPSHOTS[:-1]:  # measured here: finite, and not the final flow's numbers
            assert (
                math.isfinite(rows.loc[step, "fd_classifier"])
                and rows.loc[step, "fd_classifier"] != rows.loc[60, "fd_classifier"]
            )
            assert rows.loc[step, "fd_pixel"] != rows.loc[60, "fd_pixel"]
    findings = json.loads((folder / "findings.json").read_text())
    assert findings["experiment"] == "E6" and findings["distance"] == "fd_classifier" and findings["points"] == 50
    assert findings["fid_status"].startswith("skipped: pt_inception") and "evaluate: FID skipped" in output
    assert len(findings["claims"]) == 2 and all(c["reason"] for c in findings["claims"])  # the rules: the tests below
    assert [row["flow_iterations"] for row in findings["matched"]] == SNAPSHOTS
    for row in findings["matched"]:  # the paired difference's estimate is the difference of the table's distances
        assert row["difference"] == pytest.approx(row["gpe"] - row["vae"], abs=1e-9)
        assert row["difference_ci_low"] <= row["difference"] <= row["difference_ci_high"]
    assert [record["method"] for record in findings["no_flow"]] == ["gpe", "vae"]
    assert findings["budget"]["gpe"]["flow_steps"] == findings["budget"]["vae"]["flow_steps"] == 60
    assert any("24 h" in note for note in findings["notes"])


def test_the_two_methods_are_child_runs_with_identical_metric_names_and_flow_settings(experiment_run):
    project, _ = experiment_run
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    table = mlflow.search_runs(experiment_names=["gpe_pipeline"])
    parents = table[table["tags.mlflow.parentRunId"].isna()]
    children = table[table["tags.mlflow.parentRunId"].notna()]
    # The VAE's joint training is the one E4's VAE row reads too (gme_levels.seed_0.vae_joint): a child of its own.
    assert len(parents) == 1 and sorted(children["tags.variant"]) == ["gpe", "vae", "vae_joint"]
    assert dict(zip(children["tags.variant"], children["tags.method"], strict=True)) == {
        "gpe": "gpe",
        "vae": "vae",
        "vae_joint": "vae",
    }
    metrics = {
        row["tags.variant"]: {c for c in table.columns if c.startswith("metrics.") and row[c] == row[c]}
        for _, row in children.iterrows()
    }
    encoder_stage = {c for c in metrics["gpe"] if c.startswith("metrics.train_encoder/")}
    assert encoder_stage and encoder_stage <= metrics["vae_joint"]
    assert metrics["gpe"] - encoder_stage == metrics["vae"] and "metrics.evaluate/fd_classifier_gen" in metrics["vae"]
    children = children[children["tags.variant"] != "vae_joint"]
    flow_columns = [c for c in table.columns if c.startswith("params.train_flow.") and "checkpoint_path" not in c]
    assert "params.train_flow.training.snapshot_steps" in flow_columns
    assert (children[flow_columns].nunique(dropna=False) == 1).all(), "both flows train with identical settings"
    assert children["params.train_flow.training.snapshot_steps"].iloc[0] == str(SNAPSHOTS)
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(parents.iloc[0].run_id, EXPERIMENT)}
    assert artifacts == {f"{EXPERIMENT}/{name}" for name in ("results.csv", "summary.csv", "figure.png", "findings.json", "seed_0")}


def test_both_methods_get_the_same_flow_and_bad_steps_name_the_key(params):
    params = with_value(params, "train_flow.training.max_steps", 6000)
    namespaces = {f"{EXPERIMENT}.gpe", f"{EXPERIMENT}.vae"}
    gpe, vae = (run_parameters(params, namespaces)[ns] for ns in sorted(namespaces))
    def without_checkpoint(flow: dict) -> dict:  # each variant checkpoints in its own folder
        return {**flow, "training": {k: v for k, v in flow["training"].items() if k != "checkpoint_path"}}

    assert without_checkpoint(gpe["train_flow"]) == without_checkpoint(vae["train_flow"])
    assert gpe["train_flow"]["training"]["snapshot_steps"] == [250, 500, 1000, 2000, 4000, 6000]
    assert gpe["train_flow"]["training"]["target"] is None
    assert vae["train_encoder"]["method"] == "vae" and vae["train_encoder"]["beta"] == 0.1
    for steps in ([250, 7000], [], [0], "1000", None, [250.5], [True]):
        with pytest.raises(ParameterError, match=rf"^{EXPERIMENT}\.snapshot_steps must be .*max_steps \(6000\)"):
            run_parameters(with_value(params, f"{EXPERIMENT}.snapshot_steps", steps), namespaces)
    own_flow = with_value(params, "methods.gpe.train_flow", {"training": {"lr": 0.1}})
    with pytest.raises(ParameterError, match=rf"methods\.gpe\.train_flow cannot be used by {EXPERIMENT}"):
        run_parameters(own_flow, namespaces)


@pytest.mark.parametrize("env", ["base", "mnist", "cifar10", "celeba", "celebahq"])
def test_the_experiment_validates_in_the_paper_environments(env):
    validate_run(environment_config(env), create_pipeline())


def test_snapshot_steps_past_the_flows_budget_fail_before_any_node(params):
    params = {**params, EXPERIMENT: {**params[EXPERIMENT], "snapshot_steps": [100, 9000]}}
    with pytest.raises(ParameterError, match=rf"{EXPERIMENT}\.snapshot_steps"):
        validate_run(params, create_pipeline())


def matched(differences: list[tuple[float, float, float]]) -> pd.DataFrame:
    """A matched_iterations table from (GPE - VAE, ci_low, ci_high) at iterations 100, 200, ... (nan bounds: none)."""
    rows = []
    for i, (difference, low, high) in enumerate(differences):
        rows.append(
            {
                "flow_iterations": 100 * (i + 1),
                "gpe": 10.0 + difference,
                "vae": 10.0,
                "difference": difference,
                "difference_ci_low": low,
                "difference_ci_high": high,
                "separated": which_lower(low, high, "gpe", "vae"),
            }
        )
    return pd.DataFrame(rows)


def test_which_lower_reads_the_interval_of_a_difference():
    assert which_lower(-2.0, -0.1, "gpe", "vae") == "gpe" and which_lower(0.1, 2.0, "gpe", "vae") == "vae"
    assert which_lower(-1.0, 1.0, "gpe", "vae") == "" and which_lower(0.0, 0.0, "gpe", "vae") == ""
    assert which_lower(math.nan, math.nan, "gpe", "vae") is None


@pytest.mark.parametrize(
    "differences, expected, counts",
    [
        ([(-2, -3, -1), (-1, -2, -0.5), (-1, -2, 0.5)], HELD, "GPE lower at 2, the VAE lower at 0, neither at 1 of 3"),
        ([(-2, -3, -1), (-1, -2, 0.5), (-1, -2, 0.5)], NOT_MEASURABLE, "GPE lower at 1, the VAE lower at 0, neither at 2"),
        ([(-2, -3, -1), (-2, -3, -1), (1, 0.2, 2)], NOT_HELD, "GPE lower at 2, the VAE lower at 1, neither at 0"),
        ([(0.5, -1, 1), (-0.5, -1, 1), (0.1, -1, 1)], NOT_MEASURABLE, "neither at 3 of 3"),
    ],
)
def test_the_generation_verdict_follows_the_stated_rule_with_the_margins_in_the_text(differences, expected, counts):
    verdict, measured, reason = generation_verdict(matched(differences), "fd_classifier", 90, 0.95)
    assert verdict == expected and counts in measured and "N = 90" in measured and "paired 95% bootstrap interval" in measured
    assert "100: -2 [-3, -1]" in measured or "100: +0.5 [-1, +1]" in measured, "each snapshot's difference and interval"
    assert reason.startswith("rule: at each snapshot the paired bootstrap interval")
    if expected == NOT_MEASURABLE:
        assert reason.endswith(f"the interval holds 0 at {counts.split('neither at ')[1].split(' of')[0]} of 3 snapshots")


def test_without_intervals_the_point_estimates_decide_and_say_so():
    nan = math.nan
    verdict, measured, reason = generation_verdict(matched([(-1, nan, nan), (2, nan, nan)]), "fd_classifier", 10, 0.95)
    assert verdict == NOT_HELD and "no bootstrap intervals" in reason  # lower at 1 of 2 is not more than half
    assert "(GPE lower at 1 of 2)" in measured and "100: -1 (no interval)" in measured
    verdict, _, _ = generation_verdict(matched([(-1, nan, nan), (-2, nan, nan), (1, nan, nan)]), "fd_classifier", 10, 0.95)
    assert verdict == HELD


EVALUATE = {"bootstrap": {"resamples": 50, "confidence": 0.9, "max_features": 4096}, "seed": 0}


def feature_sets(**shifts: float) -> dict:
    """Claim features (60, 3) of the held-out set and of sets shifted from it by the given means, by name."""
    generator = torch.Generator().manual_seed(4)
    base = torch.randn(60, 3, generator=generator, dtype=torch.float64)
    noise = torch.randn(60, 3, generator=generator, dtype=torch.float64)
    return {"heldout": base, **{name: noise + shift for name, shift in shifts.items()}}


def test_matched_iterations_pair_the_two_methods_snapshots_on_the_same_resamples():
    sets = feature_sets(near=0.0, far=2.0)
    claim_sets = {"heldout": sets["heldout"], ("gpe", 100): sets["near"], ("vae", 100): sets["far"]}
    claim_sets |= {("gpe", 200): sets["far"], ("vae", 200): sets["far"].clone(), ("gpe", 300): sets["far"]}
    fd = {name: frechet_distance(sets[name], sets["heldout"]) for name in ("near", "far")}
    table = pd.DataFrame(
        [
            {"variant": "gpe", "flow_iterations": 100, "fd_classifier": fd["near"]},
            {"variant": "vae", "flow_iterations": 100, "fd_classifier": fd["far"]},
            {"variant": "gpe", "flow_iterations": 200, "fd_classifier": fd["far"]},
            {"variant": "vae", "flow_iterations": 200, "fd_classifier": fd["far"]},
            {"variant": "gpe", "flow_iterations": 300, "fd_classifier": fd["far"]},  # the VAE has no snapshot there
        ]
    )
    rows = matched_iterations(table, claim_sets, "fd_classifier", EVALUATE).set_index("flow_iterations")
    assert list(rows.index) == [100, 200]
    assert rows.loc[100, "difference"] == pytest.approx(fd["near"] - fd["far"], rel=1e-12)
    assert rows.loc[100, "difference_ci_high"] < 0 and rows.loc[100, "separated"] == "gpe"
    assert (rows.loc[200, "difference"], rows.loc[200, "difference_ci_low"], rows.loc[200, "separated"]) == (0.0, 0.0, "")
    narrow = {**EVALUATE, "bootstrap": {**EVALUATE["bootstrap"], "max_features": 2}}
    wide = matched_iterations(table, claim_sets, "fd_classifier", narrow)
    assert wide["separated"].isna().all() and wide["difference_ci_low"].isna().all(), "features wider than max_features"


def no_flow_inputs(no_flow: str, gpe_best: str) -> tuple[pd.DataFrame, dict]:
    """E6's table and claim features: the VAE without flow's set, GPE's snapshots (its best one named) and the VAE's."""
    sets = feature_sets(near=0.0, mid=1.0, far=3.0)
    claim_sets = {"heldout": sets["heldout"], NO_FLOW: sets[no_flow], ("gpe", 100): sets["far"], ("gpe", 200): sets[gpe_best]}
    claim_sets |= {("vae", 100): sets["near"], ("vae", 200): sets["mid"]}
    table = pd.DataFrame(
        [
            {"variant": variant, "flow_iterations": step, "fd_classifier": frechet_distance(claim_sets[key], sets["heldout"])}
            for key in claim_sets
            if key != "heldout"
            for variant, step in [key if isinstance(key, tuple) else (NO_FLOW, 0)]
        ]
    )
    return table, claim_sets


@pytest.mark.parametrize(
    "no_flow, gpe_best, expected",
    [
        ("far", "near", HELD),  # the VAE without flow lies furthest from the held-out set
        ("mid", "mid", NOT_MEASURABLE),  # as far as GPE's best snapshot: that difference is 0 at every resample
        ("near", "mid", NOT_HELD),  # nearer than GPE's best snapshot
    ],
)
def test_the_no_flow_claim_compares_the_vae_without_flow_with_each_flows_best_snapshot(no_flow, gpe_best, expected):
    table, claim_sets = no_flow_inputs(no_flow, gpe_best)
    item, records = no_flow_claim(table, claim_sets, "fd_classifier", 60, EVALUATE)
    assert item["verdict"] == expected and item["claim"] == "The VAE decoder without a flow scores worst (Fig. 11)"
    assert [(r["method"], r["best_at"]) for r in records] == [("gpe", 200), ("vae", 100)], "each flow's lowest snapshot"
    fd = table.set_index(["variant", "flow_iterations"])["fd_classifier"]
    assert records[0]["difference"] == pytest.approx(fd[NO_FLOW, 0] - fd["gpe", 200], rel=1e-12)
    assert "GPE latents + flow (best at 200 iterations" in item["measured"] and "paired 90% bootstrap interval" in item["measured"]
    assert item["reason"].startswith("rule: for each flow, the paired bootstrap interval")
    expected_sides = {HELD: ["gpe", "vae"], NOT_MEASURABLE: ["", "vae"], NOT_HELD: [NO_FLOW, ""]}[expected]  # near is the VAE's best too
    assert [r["separated"] for r in records] == expected_sides


def test_the_summary_uses_fid_when_the_inception_weights_exist(monkeypatch):
    # Stand-ins for pytorch-fid: the weights "exist" and the features are the flattened pixels.
    monkeypatch.setattr(evaluation, "inception_available", lambda: True)
    builds = []  # the Inception network is built once per summary, not once per set

    def inception_extractor():
        builds.append(1)
        return lambda images: images.flatten(1)[:, :6]

    monkeypatch.setattr(evaluation, "inception_extractor", inception_extractor)
    generator = torch.Generator().manual_seed(0)
    train = {"x": torch.randint(256, (40, 1, 4, 4), generator=generator, dtype=torch.uint8)}
    heldout = {"x": torch.randint(256, (20, 1, 4, 4), generator=generator, dtype=torch.uint8)}
    params = yaml.safe_load((BASE / "parameters_evaluate.yml").read_text())["evaluate"]
    params |= {"device": "cpu", "kid": {"subset_size": 10, "subsets": 3}, "num_figure_samples": 4}
    params["bootstrap"] = {**params["bootstrap"], "resamples": 10}
    params["sampling"] = {**params["sampling"], "steps": 2}
    history = pd.DataFrame({"step": [10], "train_elapsed_s": [1.0]})
    outputs = {}
    for index, method in enumerate(("gpe", "vae")):
        # evaluate's measurements of the final flow (the snapshot at the flow's last step, 10) and of the floor
        metrics = {"sampling_nfe": 99}
        for label, value in (("gen", 7.0 + index), ("floor", 0.5 + index)):
            for kind in ("fid", "fd_pixel"):
                metrics |= {
                    f"{kind}_{label}": value,
                    f"{kind}_{label}_ci_low": value - 0.1,
                    f"{kind}_{label}_ci_high": value + 0.1,
                }
            for kind in ("kid", "kd_pixel"):
                metrics |= {f"{kind}_{label}": value / 10, f"{kind}_{label}_std": 0.01}
        flow = build_model("velocity", "mlp", latent_dim=2, hidden=[8], time_embedding_dim=4)
        snapshots = {step: {k: v + 0.01 * step for k, v in flow.state_dict().items()} for step in (5, 10)}
        outputs |= {
            f"{method}__flow": flow,
            f"{method}__flow_snapshots": snapshots,
            f"{method}__decoder": build_model("decoder", "mlp", data_shape=[1, 4, 4], latent_dim=2, hidden=[8]),
            f"{method}__latent_stats": {"mean": torch.zeros(2), "scale": torch.tensor(1.0)},
            f"{method}__encoder_history": history,
            f"{method}__decoder_history": history,
            f"{method}__flow_history": history,
            f"{method}__evaluation_metrics": metrics,
            f"{method}__generated_samples": torch.rand(20, 1, 4, 4, generator=generator) * 2 - 1,
        }
    metadata = {"num_heldout": 20, "num_train": 40}
    table, figure, findings = summarise_generation_budget(train, heldout, metadata, NoModel(), params, [5, 10, 15], **outputs)
    assert findings["distance"] == "fid" and findings["fid_status"] == "computed" and len(builds) == 1
    assert {"fid", "fid_ci_low", "kid", "kid_std", "fd_pixel"} <= set(table.columns) and "fd_classifier" not in table
    assert len(figure.axes) == 4  # FID, KID, the pixel Frechet distance, and FID's paired GPE - VAE
    assert list(table["flow_iterations"][:2]) == [5, 10] and math.isnan(table["flow_iterations"].iloc[-1])
    rows = {(row.variant, row.flow_iterations): row for row in table.itertuples() if not math.isnan(row.flow_iterations)}
    floor = table[table["variant"] == FLOOR].iloc[0]
    assert (rows["gpe", 10].fid, rows["gpe", 10].fid_ci_high, rows["vae", 10].kd_pixel_std) == (7.0, 7.1, 0.01)
    assert (floor["fid"], floor["kid"], floor["fd_pixel_ci_low"]) == (0.5, 0.05, 0.4), "gpe's evaluate floor"
    assert all(math.isfinite(rows[m, 5].fid) and rows[m, 5].fid not in (7.0, 8.0) for m in ("gpe", "vae")), "measured here"
    assert rows["gpe", 5].fid != rows["vae", 5].fid
    assert [n for n in findings["notes"] if "(99 function evaluations" in n], "the final flow's sampling, as evaluate ran it"
    assert [n for n in findings["notes"] if "no snapshot at [15]" in n], "a requested snapshot that is missing is reported"
    assert [n for n in findings["notes"] if n.startswith("pixel Frechet distance (not used for the verdicts")]
    assert [c["verdict"] for c in findings["claims"]] and findings["matched"][0]["difference_ci_low"] is not None
    assert [n for n in findings["notes"] if n.startswith("FID (Inception): VAE without flow")]


def test_a_snapshot_rebuilds_the_flows_velocity_field():
    flow = build_model("velocity", "mlp", latent_dim=2, hidden=[8], time_embedding_dim=4)
    latents, times = torch.randn(5, 2, generator=torch.Generator().manual_seed(0)), torch.linspace(0, 1, 5)
    with torch.no_grad():
        assert torch.equal(snapshot_velocity(flow, flow.state_dict())(latents, times), flow(latents, times))
        shifted = {key: value + 0.01 for key, value in flow.state_dict().items()}
        assert not torch.equal(snapshot_velocity(flow, shifted)(latents, times), flow(latents, times))
