"""A tiny paper_report killed mid-way and re-run: nothing that had finished trains again, each network trains once per
seed, the report reads every experiment's findings, and a changed setting retrains exactly what it affects."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import mlflow
import pytest
import torch

from .conftest import kedro, kill_when, make_project_copy

RUN = ["run", "--env", "test", "--pipeline=paper_report"]
REUSED = re.compile(r"(\S+): reusing the finished training in (\S+) \(same fingerprint\)")
TRAINED = re.compile(r"(\S+) finished at step (\d+)")


def finished_checkpoints(project: Path) -> dict[str, dict]:
    """{checkpoint path relative to the project: its finished training}, for every training that finished."""
    found = {}
    for path in sorted((project / "data" / "06_models" / "checkpoints").rglob("*.pt")):
        state = torch.load(path, weights_only=False)
        if state.get("finished"):
            found[str(path.relative_to(project))] = state
    return found


def trajectory(state: dict) -> str:
    """What decides a training's weights step by step (network, loss, data, optimiser, seed), not where it stops or
    how often it evaluates: two finished trainings with the same trajectory trained the same steps twice."""
    fingerprint = json.loads(state["fingerprint"])
    return json.dumps({k: v for k, v in fingerprint.items() if k not in ("result_settings", "evaluation")}, sort_keys=True)


@pytest.fixture(scope="module")
def resumed(tmp_path_factory) -> dict:
    """paper_report killed (SIGKILL) once 8 trainings had finished, then run again to its end."""
    project = make_project_copy(tmp_path_factory.mktemp("paper_report_resume"))
    kill_when(project, RUN, lambda: len(finished_checkpoints(project)) >= 8, timeout=600, poll=0.5)
    before = finished_checkpoints(project)
    run = kedro(project, *RUN, timeout=1200)
    return {"project": project, "before": before, "output": run.output}


def test_a_resumed_paper_report_trains_nothing_that_had_finished(resumed):
    assert len(resumed["before"]) >= 8, "the kill came after some trainings had finished"
    reused = {path for _, path in REUSED.findall(resumed["output"])}
    assert set(resumed["before"]) <= reused, "every training that had finished is reused, none trained again"
    assert "ignoring checkpoint" not in resumed["output"]
    assert (resumed["project"] / "data" / "08_reporting" / "report.md").exists()
    after = finished_checkpoints(resumed["project"])
    for path, state in resumed["before"].items():
        assert torch.equal(
            next(iter(after[path]["model"].values())), next(iter(state["model"].values()))
        ), f"{path} is the training that had finished"


def test_each_network_trains_once_per_seed(resumed):
    trainings = finished_checkpoints(resumed["project"])
    namespaces = {Path(path).parent.name for path in trainings}
    # E3 and E4 read their rows from the frozen-encoder study: one GPE encoder per seed, a decoder per level, E4's VAE.
    assert not any(ns.startswith("exp_decoder_vs_gme.") for ns in namespaces), "E3 trains nothing of its own"
    assert not any(ns.startswith("exp_iterations_to_threshold.") for ns in namespaces), "E4's rows are the study's"
    assert {ns for ns in namespaces if ns.startswith("gme_levels.")} == {
        "gme_levels.seed_0.vae_joint",  # the joint VAE that E4's VAE row and E6's VAE read
        "gme_levels.seed_0.vae",  # E4's VAE row: a fresh decoder on the joint VAE's encoder
        "gme_levels.seed_0.encoder",
        "gme_levels.seed_0.level_0",  # conf/test: E3's levels 5.0, 3.5, 2.5 and E4's 5.0, 2.5
        "gme_levels.seed_0.level_1",
        "gme_levels.seed_0.level_2",
    }
    by_trajectory = defaultdict(list)  # the stages' trainings (not the probes') by what decides their weights
    for path, state in trainings.items():
        if not Path(path).name.startswith("probe_"):
            by_trajectory[trajectory(state)].append(Path(path).parent.name)
    repeated = [set(names) for names in by_trajectory.values() if len(names) > 1]
    # What is still trained twice: E6's GPE encoder repeats the level study encoder's steps (it trains on, to the
    # stage's own stop), and E5's GPE encoder and VAE repeat those when E5's probe picks the configured rate.
    assert not any(path.endswith("exp_generation_budget.seed_0.vae/encoder.pt") for path in trainings), "E6's VAE is the study's"
    allowed = [
        {"exp_generation_budget.seed_0.gpe", "gme_levels.seed_0.encoder", "exp_wallclock.seed_0.gpe"},
        {"gme_levels.seed_0.vae_joint", "exp_wallclock.seed_0.vae"},
    ]
    assert all(any(names <= known for known in allowed) for names in repeated), repeated
    # E5's GPE encoder trained once, by its stage: its probe trained 200-step runs only (conf/test: 2 rates x 20).
    probe = json.loads(
        (resumed["project"] / "data" / "08_reporting" / "exp_wallclock.seed_0.gpe" / "learning_rate_probe.json").read_text()
    )
    assert [row["trainer"] for row in probe["rows"]] == ["encoder", "encoder", "decoder", "decoder"]
    assert "exp_wallclock.seed_0.gpe" in namespaces


def test_the_resumed_report_reads_every_experiments_findings(resumed):
    from gpe_pipeline.pipelines.paper_report.pipeline import EXPERIMENTS

    project = resumed["project"]
    report = (project / "data" / "08_reporting" / "report.md").read_text()
    assert "| command | `kedro run --env test --pipeline=paper_report`" in report
    assert "| machine |" in report and "| wall-clock |" in report and "## Limits of this run" in report
    for name in EXPERIMENTS:
        findings = json.loads((project / "data" / "08_reporting" / name / "findings.json").read_text())
        assert f"## {findings['experiment']}: {findings['title']}" in report
        assert f"![{findings['experiment']}]({name}/figure.png)" in report
        assert findings["seeds"] == 1  # conf/test (tests/test_seeds.py runs two)
        for item in findings["claims"]:
            assert (
                f"| {findings['experiment']} | {item['claim']} | {item['paper']} | **{item['verdict']}** | "
                f"{', '.join(item['seed_verdicts'])} | {item['reason']} |" in report
            )
            assert f"- {item['claim']}: seed 0 ({item['seed_verdicts'][0]}): {item['seed_measured'][0]}" in report
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    parents = mlflow.search_runs(
        experiment_names=["gpe_pipeline"], filter_string="tags.mlflow.runName LIKE 'paper_report%' and status = 'FINISHED'"
    )
    assert {a.path for a in mlflow.MlflowClient().list_artifacts(parents.run_id.iloc[0], "paper_report")} == {
        "paper_report/report.md"
    }


def test_a_changed_setting_retrains_exactly_the_variants_it_affects(resumed):
    project = resumed["project"]
    run = kedro(project, *RUN, "--params", "exp_encoder_stability.learning_rates.high=0.2", timeout=1200)
    trained = {name for name, _ in TRAINED.findall(run.output)}
    reused = [path for _, path in REUSED.findall(run.output)]
    retrained = {Path(path).parent.name for path in re.findall(r"ignoring checkpoint (\S+) and starting fresh", run.output)}
    assert retrained == {f"exp_encoder_stability.seed_0.{loss}_lr_high" for loss in ("gme", "mds1", "mds2")}
    assert trained == {"train_encoder"} and len(reused) == len(finished_checkpoints(project)) - 3
