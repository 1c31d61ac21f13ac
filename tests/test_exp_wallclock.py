"""E5 (exp_wallclock, Fig. 10 and Table 2): the learning-rate probe, the readings and claims, and a tiny real run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch
from torch import nn

from gpe_pipeline import tracking
from gpe_pipeline.core.models import NoModel
from gpe_pipeline.experiment_parameters import log_threshold_grid
from gpe_pipeline.params import ParameterError
from gpe_pipeline.pipelines.exp_wallclock import claims, nodes
from gpe_pipeline.pipelines.exp_wallclock.pipeline import create_pipeline
from gpe_pipeline.validation import validate_run
from gpe_pipeline.variants import run_parameters
from gpe_pipeline.verdicts import HELD, NOT_HELD, NOT_MEASURABLE

from .conftest import environment_config, kedro, make_project_copy, with_value

METHODS = list(nodes.METHODS)
EXPERIMENT = "exp_wallclock"


# --- parameters -------------------------------------------------------------------------------------------------


def test_the_base_parameters_are_valid(params):
    validate_run(params, create_pipeline())


@pytest.mark.parametrize(
    "dotted, value, message",
    [
        ("threshold", -1.0, "exp_wallclock.threshold must be a positive number"),
        ("probe.steps", 15, "exp_wallclock.probe.steps must be a multiple of 10"),
        ("probe.learning_rates", [], "exp_wallclock.probe.learning_rates must be a non-empty list"),
        ("probe.learning_rates", [1e-3, -1.0], "exp_wallclock.probe.learning_rates must be a non-empty list"),
        ("probe.min_decrease", 1.0, r"exp_wallclock.probe.min_decrease must be a number in \[0, 1\)"),
    ],
)
def test_a_bad_experiment_parameter_is_named_before_the_run(params, dotted, value, message):
    with pytest.raises(ParameterError, match=message):
        validate_run(with_value(params, f"{EXPERIMENT}.{dotted}", value), create_pipeline())


def test_a_method_override_of_an_unknown_key_is_named(params):
    bad = with_value(params, "methods.vae", {"train_encoder": {"kl_weight": 1.0}})
    with pytest.raises(ParameterError, match="exp_wallclock.vae.train_encoder.kl_weight overrides a key"):
        validate_run(bad, create_pipeline())


@pytest.mark.parametrize("env", ["mnist", "cifar10", "celeba", "celebahq"])
def test_the_paper_environments_time_table_1s_threshold_and_validate(env):
    params = environment_config(env)
    validate_run(params, create_pipeline())
    assert params[EXPERIMENT]["threshold"] == params["train_decoder"]["training"]["target"], "Table 1's second threshold"
    grid = log_threshold_grid(params[EXPERIMENT]["threshold"], params[EXPERIMENT]["threshold_grid"], "grid")
    table_1 = params["exp_iterations_to_threshold"]["thresholds"]  # E4's range: Table 1's two thresholds at its ends
    assert [grid[0], grid[-1]] == [table_1["highest"], table_1["lowest"]], "from Table 1's two thresholds"
    assert params[EXPERIMENT]["probe"]["learning_rates"] == [1e-4, 3e-4, 1e-3, 3e-3, 1e-2], "conf/base's keys are kept"


def test_the_sections_keep_the_rate_as_configured_until_the_probe_chose_it(params):
    sections = run_parameters(params, {f"{EXPERIMENT}.vae"})[f"{EXPERIMENT}.vae"]
    assert sections["train_encoder"]["method"] == "vae" and sections["train_encoder"]["beta"] == 0.1
    configured = sections["train_decoder"]["training"]["lr"]
    probed = nodes.use_probed_rates({"chosen": {"train_decoder": 3e-3}}, **{s: sections[s] for s in SECTIONS})
    assert probed[2]["training"]["lr"] == 3e-3 and probed[2]["training"]["max_steps"] == sections["train_decoder"]["training"]["max_steps"]
    assert probed[0] == sections["train_encoder"] and probed[1] == sections["cache_latents"]
    assert sections["train_decoder"]["training"]["lr"] == configured, "the configured section is not changed"


SECTIONS = ("train_encoder", "cache_latents", "train_decoder")


# --- the probe, with stand-in trainers -----------------------------------------------------------------------------


class FakeTrainers:
    """Stand-ins for the stages' trainers (stage_training.train_encoder_model, train_decoder_model): a rate >= 1e-2
    diverges at step 7."""

    def __init__(self):
        self.calls: list[tuple[str, dict, bool]] = []  # (trainer, its training settings, MLflow paused)

    @staticmethod
    def history(training: dict, metric: str) -> pd.DataFrame:
        steps = training["max_steps"]
        window = training["log_every"]
        records = [
            {"step": s, "train_loss": 1.0 / s, "train_reconstruction": 0.5 / s, "train_elapsed_s": s / 1000}
            for s in range(window, steps + 1, window)
        ]
        if training["lr"] >= 1e-2:
            records = [{"step": window, "train_loss": math.nan, "train_elapsed_s": 0.001, "diverged_step": 7}]
        records[-1][f"validation_{metric}"] = 10 * training["lr"]
        return pd.DataFrame(records)

    def train_encoder_model(self, train_x, validation_x, metadata, params, decoder_params):
        joint = params["method"] != "gpe"
        training = decoder_params["training"] if joint else params["training"]
        seen = {**training, "encoder_checkpoint_path": params["training"]["checkpoint_path"]}
        self.calls.append(("joint" if joint else "encoder", seen, tracking._PAUSED.get()))
        encoder = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
        return encoder, self.history(training, "mse" if joint else "gme"), nn.Linear(3, 64) if joint else NoModel()

    def train_decoder_model(self, train_latents, validation_latents, train_x, validation_x, metadata, params):
        assert train_latents.shape == (len(train_x), 3), "the trained encoder's latents"
        self.calls.append(("decoder", {**params["training"], "encoder_checkpoint_path": params["training"]["checkpoint_path"]}, tracking._PAUSED.get()))
        return nn.Linear(3, 64), self.history(params["training"], "mse")


@pytest.fixture
def fake_trainers(monkeypatch) -> FakeTrainers:
    fakes = FakeTrainers()
    monkeypatch.setattr(nodes, "train_encoder_model", fakes.train_encoder_model)
    monkeypatch.setattr(nodes, "train_decoder_model", fakes.train_decoder_model)
    return fakes


def run_probe(params: dict, method: str, rates: list[float]) -> dict:
    experiment = {**params[EXPERIMENT], "probe": {"learning_rates": rates, "steps": 20, "min_decrease": 0.1}}
    data = {"x": torch.zeros(12, 1, 8, 8)}
    resolved = run_parameters(params, {f"{EXPERIMENT}.{method}"})[f"{EXPERIMENT}.{method}"]  # the variant's own sections
    return nodes.probe_learning_rates(data, data, {"shape": [1, 8, 8]}, experiment, method, **{s: resolved[s] for s in SECTIONS})


def test_gpe_probes_its_encoder_then_its_decoder_on_the_stages_latents_and_trains_no_encoder_twice(params, fake_trainers):
    encoder_probe = run_probe(params, "gpe", [1e-2, 1e-4, 1e-3])
    assert encoder_probe["chosen"] == {"train_encoder": 1e-3}
    assert [(t, training["lr"], training["max_steps"]) for t, training, _ in fake_trainers.calls] == [
        ("encoder", rate, 20) for rate in (1e-2, 1e-4, 1e-3)
    ], "the diverged rate does not stop the sweep; no encoder is trained at the chosen rate by the probe"
    experiment = {**params[EXPERIMENT], "probe": {"learning_rates": [1e-2, 1e-4, 1e-3], "steps": 20, "min_decrease": 0.1}}
    data = {"x": torch.zeros(12, 1, 8, 8)}
    latents = torch.zeros(12, 3)  # what the cache_latents stage wrote from the stage's encoder
    resolved = run_parameters(params, {f"{EXPERIMENT}.gpe"})[f"{EXPERIMENT}.gpe"]
    result = nodes.probe_decoder_rates(
        latents, latents, data, data, {"shape": [1, 8, 8]}, experiment, resolved["train_decoder"], encoder_probe
    )
    assert result["chosen"] == {"train_encoder": 1e-3, "train_decoder": 1e-3}
    assert [(t, training["lr"]) for t, training, _ in fake_trainers.calls[3:]] == [("decoder", r) for r in (1e-2, 1e-4, 1e-3)]
    for trainer, training, paused in fake_trainers.calls:
        assert paused, "a probe's curves stay out of the variant's MLflow run"
        # Each probe keeps its finished training in a file of its own beside its stage's (a re-run reuses it).
        stage = resolved["train_decoder" if trainer == "decoder" else "train_encoder"]["training"]["checkpoint_path"]
        expected = stage.replace(Path(stage).name, f"probe_{trainer}_lr{training['lr']:g}.pt")
        assert training["encoder_checkpoint_path"] == expected
        assert training["target"] is None and training["on_divergence"] == "stop" and training["log_every"] == 2
    rows = {(row["trainer"], row["lr"]): row for row in result["rows"]}
    assert rows[("encoder", 1e-2)]["outcome"] == "diverged" and rows[("encoder", 1e-2)]["detail"] == "diverged at step 7"
    assert rows[("encoder", 1e-2)]["first_fifth_loss"] is None, "JSON gets null, not NaN"
    assert rows[("decoder", 1e-3)]["chosen"] and not rows[("decoder", 1e-4)]["chosen"]
    assert not tracking._PAUSED.get(), "the pause ends with the probe"
    sections = {s: resolved[s] for s in SECTIONS}
    encoder, cache = nodes.use_probed_rates(encoder_probe, train_encoder=sections["train_encoder"], cache_latents=sections["cache_latents"])
    assert encoder["training"]["lr"] == 1e-3 and cache == sections["cache_latents"]
    (decoder,) = nodes.use_probed_rates(result, train_decoder=sections["train_decoder"])
    assert decoder["training"]["lr"] == 1e-3


def test_a_baseline_probes_its_joint_training_on_the_decoder_stages_settings(params, fake_trainers):
    result = run_probe(params, "ae_mds", [1e-3, 1e-2])
    assert result["chosen"] == {"train_decoder": 1e-3}
    assert [(trainer, training["lr"]) for trainer, training, _ in fake_trainers.calls] == [("joint", 1e-3), ("joint", 1e-2)]
    assert [row["outcome"] for row in result["rows"]] == ["stable", "diverged"]
    paths = [training["encoder_checkpoint_path"] for _, training, _ in fake_trainers.calls]
    assert [Path(path).name for path in paths] == ["probe_joint_lr0.001.pt", "probe_joint_lr0.01.pt"]


# --- the readings and the claims, on hand-made numbers ---------------------------------------------------------------


def test_reached_before_orders_methods_that_missed_the_threshold_last():
    assert claims.reached_before(1.0, 2.0) and not claims.reached_before(2.0, 2.0)
    assert claims.reached_before(1.0, None) and claims.reached_before(None, 1.0) is False
    assert claims.reached_before(None, None) is None


def test_the_threshold_grid_is_log_spaced_between_its_bounds_and_rounded_as_printed():
    assert log_threshold_grid(0.022, {"highest": 0.1, "points": 8}, "k") == [
        0.1, 0.0805, 0.0649, 0.0523, 0.0421, 0.0339, 0.0273, 0.022
    ]  # 0.1 * (0.22 ** (i / 7)) to 3 significant digits
    assert log_threshold_grid(0.2, {"highest": 0.4, "points": 2}, "k") == [0.4, 0.2]
    for grid in ({"highest": 0.02, "points": 3}, {"highest": 0.1, "points": 1}, {"highest": 0.1}, {"highest": 0.1, "points": 2.0},
                 {"highest": 0.0221, "points": 5}):  # the last: 5 values between 0.0221 and 0.022 repeat at 3 digits
        with pytest.raises(ParameterError, match=r"^exp_wallclock.threshold_grid must map highest and"):
            log_threshold_grid(0.022, grid, "exp_wallclock.threshold_grid")


def seconds(**by_method: float | None) -> dict[str, float | None]:
    """Seconds to one threshold by method, None (not within its budget) for every method not given."""
    return {method: by_method.get(method) for method in METHODS}


def lowest(**by_method: float) -> dict[str, float]:
    """Each method's lowest validation MSE over its run: 0.005 (below every threshold used) unless given."""
    return {method: by_method.get(method, 0.005) for method in METHODS}


@pytest.mark.parametrize(
    "grid, lowest_mse, verdict, texts",
    [
        (  # GPE first wherever a method got there; no method got to the lowest threshold
            {0.1: seconds(gpe=1.0, vae=2.0, ae=1.5, ae_mds=3.0), 0.02: seconds(gpe=4.0), 0.01: seconds()},
            lowest(gpe=0.015, vae=0.05, vae_mds=0.2, ae=0.025, ae_mds=0.021),
            HELD,
            [
                "GPE first at 2 of 3 thresholds, not first at 0, undecided at 1",
                "0.1: GPE 1.0 s, AE 1.5 s (GPE 0.5 s earlier)",
                "0.02: GPE 4.0 s, no baseline (nearest AE+MDS: lowest 0.021, 0.001 above)",
                "0.01: no method (GPE lowest 0.015, 0.005 above; AE+MDS lowest 0.021, 0.011 above)",
            ],
        ),
        (  # a baseline first at the higher threshold, GPE alone at the lower one
            {0.1: seconds(gpe=3.0, vae=2.0, ae=0.5), 0.02: seconds(gpe=4.0)},
            lowest(vae=0.05, vae_mds=0.2, ae=0.03, ae_mds=0.2),
            NOT_HELD,
            ["GPE first at 1 of 2 thresholds, not first at 1, undecided at 0", "0.1: GPE 3.0 s, AE 0.5 s (GPE 2.5 s later)"],
        ),
        (  # a tie is not first
            {0.1: seconds(gpe=2.0, ae=2.0)},
            lowest(vae=0.2, vae_mds=0.2, ae_mds=0.2),
            NOT_HELD,
            ["0.1: GPE 2.0 s, AE 2.0 s (GPE at the same time)"],
        ),
        (  # GPE never got there, a baseline did
            {0.02: seconds(ae_mds=5.0)},
            lowest(gpe=0.025, vae=0.05, vae_mds=0.05, ae=0.03),
            NOT_HELD,
            ["0.02: AE+MDS 5.0 s, GPE never (lowest 0.025, 0.005 above)"],
        ),
        (
            {0.02: seconds(), 0.01: seconds()},
            lowest(gpe=0.03, vae=0.05, vae_mds=0.05, ae=0.04, ae_mds=0.04),
            NOT_MEASURABLE,
            ["GPE first at 0 of 2 thresholds, not first at 0, undecided at 2"],
        ),
    ],
)
def test_gpe_sooner_claim_over_the_grid_with_its_margins(grid, lowest_mse, verdict, texts):
    item = claims.sooner_claim(grid, lowest_mse, 0.7)
    assert item["verdict"] == verdict
    for text in texts:
        assert text in item["measured"], text
    assert f"{len(grid)} thresholds log-spaced from {max(grid):g} down to {min(grid):g}" in item["measured"]
    assert "encoder's 0.7 s" in item["measured"] and item["reason"].startswith("rule: at each threshold t of the grid")
    assert item["measured"].endswith(f"lowest validation MSE over each run: GPE {lowest_mse['gpe']:.4g}, VAE {lowest_mse['vae']:.4g}, "
                                     f"VAE+MDS {lowest_mse['vae_mds']:.4g}, AE {lowest_mse['ae']:.4g}, AE+MDS {lowest_mse['ae_mds']:.4g}")


@pytest.mark.parametrize(
    "grid, lowest_mse, verdict, texts",
    [
        (
            {0.1: seconds(gpe=1.0, vae=4.0, ae=1.5, ae_mds=3.0), 0.02: seconds(gpe=2.0, ae=3.0, ae_mds=5.0)},
            lowest(vae=0.05, vae_mds=0.045),
            HELD,
            [
                "the KL methods last at 2 of 2 thresholds, not last at 0, undecided at 0",
                "0.1: slowest without KL AE+MDS 3.0 s, fastest KL VAE 4.0 s (1.0 s later)",
                "0.02: slowest without KL AE+MDS 5.0 s, no KL method (nearest VAE+MDS: lowest 0.045, 0.025 above)",
            ],
        ),
        (
            {0.1: seconds(gpe=1.0, vae=2.0, ae=1.5, ae_mds=3.0)},
            lowest(vae_mds=0.2),
            NOT_HELD,
            ["0.1: VAE 2.0 s, AE+MDS 3.0 s (the KL method 1.0 s earlier)"],
        ),
        (  # VAE got there, AE did not
            {0.1: seconds(gpe=1.0, vae=4.0, ae_mds=3.0), 0.02: seconds(gpe=2.0)},
            lowest(vae=0.05, vae_mds=0.15, ae=0.12, ae_mds=0.05),
            NOT_HELD,
            ["0.1: VAE 4.0 s, AE never (lowest 0.12, 0.02 above)", "0.02: VAE, VAE+MDS, AE, AE+MDS never"],
        ),
        (
            {0.1: seconds(gpe=1.0, ae_mds=3.0), 0.02: seconds()},
            lowest(gpe=0.05, vae=0.2, vae_mds=0.2, ae=0.2, ae_mds=0.05),
            NOT_MEASURABLE,
            ["not last at 0, undecided at 2", "0.1: VAE, VAE+MDS, AE never (a KL method and one without both missed it)"],
        ),
    ],
)
def test_kl_methods_slowest_claim_over_the_grid_with_its_margins(grid, lowest_mse, verdict, texts):
    item = claims.kl_slowest_claim(grid, lowest_mse)
    assert item["verdict"] == verdict
    for text in texts:
        assert text in item["measured"], text
    assert item["reason"].startswith("rule: at each threshold t of the grid, the KL methods last")


def test_iteration_cost_claim_is_decided_on_the_papers_networks_only():
    paper = {"GPE decoder": "paper_mnist", "VAE decoder": "paper_mnist"}
    assert claims.iteration_cost_claim(0.001, 0.002, paper)["verdict"] == HELD
    assert claims.iteration_cost_claim(0.002, 0.002, paper)["verdict"] == NOT_HELD
    light = claims.iteration_cost_claim(0.001, 0.002, {"GPE decoder": "mlp", "VAE decoder": "mlp"})
    assert light["verdict"] == NOT_MEASURABLE and light["reason"].startswith("the paper's claim is about its architectures")
    assert "GPE decoder 1.000 ms/iter, VAE 2.000 ms/iter (ratio 0.50; the VAE 1.000 ms/iter more)" in light["measured"]
    assert "networks: GPE decoder mlp, VAE decoder mlp" in light["measured"]
    mixed = {"GPE decoder": "paper_mnist", "VAE decoder": "conv32"}
    assert claims.iteration_cost_claim(0.001, 0.002, mixed)["verdict"] == NOT_MEASURABLE


def hand_made_outputs() -> dict:
    """Every method's summary inputs: GPE's encoder trains 10 s, then its decoder; the baselines train jointly."""
    histories = {
        "gpe": (
            pd.DataFrame({"step": [50, 100], "train_elapsed_s": [5.0, 10.0], "validation_gme": [0.01, 0.005]}),
            pd.DataFrame({"step": [100, 200], "train_elapsed_s": [1.0, 2.0], "validation_mse": [0.05, 0.01]}),
        ),
    }
    for method, seconds, last in (("vae", 8.0, 0.03), ("vae_mds", 9.0, 0.03), ("ae", 4.0, 0.015), ("ae_mds", 30.0, 0.03)):
        joint = pd.DataFrame({"step": [100, 200], "train_elapsed_s": [seconds / 2, seconds], "validation_mse": [0.05, last]})
        histories[method] = (joint, joint.assign(trained_jointly=True))
    decoder = nn.Sequential(nn.Linear(3, 64), nn.Unflatten(1, (1, 8, 8)))
    outputs = {}
    for method, (encoder_history, decoder_history) in histories.items():
        chosen = {"train_encoder": 1e-2, "train_decoder": 3e-3} if method == "gpe" else {"train_decoder": 1e-3}
        probe = {
            "learning_rates": [1e-3, 3e-3, 1e-2],
            "steps": 200,
            "min_decrease": 0.1,
            "chosen": chosen,
            "rows": [{"trainer": "joint" if method != "gpe" else "encoder", "lr": 1e-3, "outcome": "stable", "detail": ""}],
        }
        probe["rows"] = [{**row, "chosen": True, "choice": "the largest stable rate"} for row in probe["rows"]]
        for entry, value in (
            ("encoder_history", encoder_history),
            ("decoder_history", decoder_history),
            ("learning_rate_probe", probe),
            ("decoder", decoder),
            ("heldout_latents", torch.zeros(5, 3)),
        ):
            outputs[f"{method}__{entry}"] = value
    return outputs


def test_the_summary_shifts_gpe_by_its_encoder_and_reads_table_2_and_the_claims(params):
    heldout = {"x": torch.zeros(5, 1, 8, 8)}
    grid = {"highest": 0.025, "points": 2}
    table, figure, findings = nodes.summarise_wallclock(0.02, grid, heldout, **hand_made_outputs())
    rows = table.set_index("trainer")
    assert list(rows.index) == ["GPE encoder", "GPE decoder", "VAE", "VAE+MDS", "AE", "AE+MDS"]
    assert rows.loc["GPE encoder", "s_per_iter"] == pytest.approx(0.1) and rows.loc["GPE decoder", "s_per_iter"] == 0.01
    assert rows.loc["GPE decoder", "s_to_0.02"] == 12.0, "the decoder's 2 s after the encoder's 10 s"
    assert rows.loc["GPE decoder", "s_to_0.025"] == 12.0 and rows.loc["AE+MDS", "s_to_0.025"] != rows.loc["AE+MDS", "s_to_0.025"]
    assert math.isnan(rows.loc["GPE encoder", "s_to_0.02"]), "the method's readings sit on its last trainer"
    assert rows.loc["AE", "s_to_0.02"] == 4.0 and math.isnan(rows.loc["VAE", "s_to_0.02"])
    assert rows.loc["GPE encoder", "learning_rate"] == 1e-2 and rows.loc["GPE decoder", "learning_rate"] == 3e-3
    assert rows.loc["VAE", "paper_celebahq_s_per_iter"] == 0.705 and rows.loc["GPE decoder", "paper_mnist_s_per_iter"] == 0.022
    assert rows.loc["AE", "heldout_recon_mse"] >= 0
    verdicts = [c["verdict"] for c in findings["claims"]]
    # AE got to both thresholds first; the KL methods and AE+MDS missed both; the hand-made decoders have no
    # architecture name, so not the paper's networks.
    assert verdicts == [NOT_HELD, NOT_MEASURABLE, NOT_MEASURABLE]
    assert findings["thresholds"] == [0.025, 0.02] and findings["threshold"] == 0.02
    assert findings["seconds_to_threshold"]["0.02"]["gpe"] == 12.0
    assert findings["lowest_validation_mse"]["ae"] == 0.015 and findings["networks"]["VAE decoder"] == "unknown"
    assert [n for n in findings["notes"] if n.startswith("Table 2 on the paper's networks, not this run: benchmarks/")]
    assert findings["lowest_validation_mse_by_common_time"]["seconds"] == 4.0, "AE's 4 s are the shortest training"
    assert math.isnan(findings["lowest_validation_mse_by_common_time"]["gpe"]), "GPE's decoder has not started by then"
    assert "GPE encoder (GME): 0.001 stable -> lr 0.001 (the largest stable rate)" in findings["notes"]
    assert figure.axes[0].get_xlabel() == "training seconds (evaluation excluded)"
    assert figure.axes[1].get_xlabel() == "validation MSE threshold"
    gpe_line = figure.axes[1].get_lines()[0]
    assert list(gpe_line.get_xdata()) == [0.025, 0.02] and list(gpe_line.get_ydata()) == [12.0, 12.0]


# --- a tiny real run ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wallclock_run(tmp_path_factory) -> Path:
    project = make_project_copy(tmp_path_factory.mktemp("exp_wallclock"))
    kedro(project, "run", "--env", "test", f"--pipeline={EXPERIMENT}", timeout=900)
    return project


def test_the_run_writes_table_figure_and_findings_with_the_probe(wallclock_run):
    folder = wallclock_run / "data" / "08_reporting" / EXPERIMENT
    table = pd.read_csv(folder / "results.csv")
    assert list(table["trainer"]) == ["GPE encoder", "GPE decoder", "VAE", "VAE+MDS", "AE", "AE+MDS"]
    assert (table["s_per_iter"] > 0).all() and table["best_validation_mse"].notna().sum() == 5
    assert [c for c in table.columns if c.startswith("s_to_")] == ["s_to_0.4", "s_to_0.283", "s_to_0.2"]
    assert (folder / "figure.png").stat().st_size > 10_000
    findings = json.loads((folder / "findings.json").read_text())
    assert findings["experiment"] == "E5" and len(findings["claims"]) == 3
    assert findings["seeds"] == 1 and list(table["seed"]) == [0] * 6  # conf/test: one seed
    probe = pd.DataFrame(findings["learning_rate_probe"])
    assert len(probe) == 2 * 2 + 4 * 2 and set(probe["outcome"]) <= {"stable", "unstable", "diverged"}
    assert probe.groupby(["method", "trainer"])["chosen"].sum().eq(1).all(), "one chosen rate per trainer"
    assert any(note.startswith("GPE decoder (MSE): 0.001 ") for note in findings["notes"])


def test_each_method_is_a_child_run_at_its_probed_rates_without_the_probes_curves(wallclock_run):
    mlflow.set_tracking_uri(f"sqlite:///{wallclock_run / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["gpe_pipeline"])
    children = runs[runs["tags.mlflow.parentRunId"].notna()]
    assert sorted(children["tags.variant"]) == sorted(METHODS) and (children["status"] == "FINISHED").all()
    metric_sets = {
        frozenset(c for c in runs.columns if c.startswith("metrics.") and row[c] == row[c]) for _, row in children.iterrows()
    }
    assert len(metric_sets) == 1, "every child has the same metric names"
    client = mlflow.MlflowClient()
    for _, child in children.iterrows():
        namespace = f"{EXPERIMENT}.seed_0.{child['tags.variant']}"
        assert child["tags.seed"] == "0"
        probe = json.loads((wallclock_run / "data" / "08_reporting" / namespace / "learning_rate_probe.json").read_text())
        for section, rate in probe["chosen"].items():
            assert float(child[f"params.{section}.training.lr"]) == rate, "the child's parameters are the ones it trained with"
        history = pd.read_csv(wallclock_run / "data" / "08_reporting" / namespace / "encoder_history.csv")
        logged = [m.step for m in client.get_metric_history(child.run_id, "train_encoder/train_loss")]
        assert logged == list(history["step"]), "only the stage's own curve, none of the probes' (logged every 2 steps)"
        assert [a.path for a in client.list_artifacts(child.run_id, "probe")] == ["probe/learning_rate_probe.json"]
    parent = runs[runs["tags.mlflow.parentRunId"].isna()].iloc[0]
    assert {a.path for a in client.list_artifacts(parent.run_id, EXPERIMENT)} == {
        f"{EXPERIMENT}/results.csv",
        f"{EXPERIMENT}/summary.csv",
        f"{EXPERIMENT}/figure.png",
        f"{EXPERIMENT}/findings.json",
        f"{EXPERIMENT}/seed_0",
    }
