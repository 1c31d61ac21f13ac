"""The plan before the spend: every training counted by hand, one measurement per network, `kedro plan` trains nothing."""

from __future__ import annotations

import importlib
import json
import math
import time
from collections import Counter
from pathlib import Path

import pytest
import torch

from gpe_pipeline.hooks import nodes_by_namespace
from gpe_pipeline.params import ParameterError
from gpe_pipeline.pipelines.build_parameters import record
from gpe_pipeline.plan import (
    estimate,
    measure_step_ms,
    plan_markdown,
    plan_settings,
    plan_totals,
    plan_trainings,
    read_device_table,
    table_step_ms,
)
from gpe_pipeline.validation import pipeline_namespaces
from gpe_pipeline.variants import run_parameters

from .conftest import PROJECT_ROOT, environment_config, kedro, make_project_copy, with_value

LOG_FILES = {"info.log"}  # conf/logging.yml's file handler
H200_TABLE = PROJECT_ROOT / "benchmarks" / "results" / "gpu-check-nvidia-h200-2026-11-27.md"


def pipeline_trainings(name: str, parameters: dict):
    """The plan's trainings of a registered pipeline under these parameters (no run, no measurement)."""
    from kedro.framework.project import configure_project

    configure_project("gpe_pipeline")
    record(parameters)  # the pipelines' seeds come from the parameters, as in a run (hooks.BuildParametersHook)
    pipeline = importlib.import_module(f"gpe_pipeline.pipelines.{name}.pipeline").create_pipeline()
    resolved = run_parameters(parameters, pipeline_namespaces(pipeline))
    return plan_trainings(parameters, resolved, nodes_by_namespace(pipeline))


def by_group(trainings) -> dict[str, tuple[int, int]]:
    """{group: (trainings, steps)}."""
    totals: dict[str, list[int]] = {}
    for training in trainings:
        total = totals.setdefault(training.group, [0, 0])
        total[0] += training.runs
        total[1] += training.steps
    return {group: tuple(total) for group, total in totals.items()}


def test_the_tiny_paper_report_plan_counts_every_training_of_every_experiment():
    trainings = pipeline_trainings("paper_report", environment_config("test"))
    # conf/test: train_encoder, train_decoder and train_flow max_steps 60; the classifier 100; E1's shared encoder
    # and decoder 60; E2's shared encoder 40; E5's probe 2 rates x 20 steps. conf/base: E4 trains a fresh decoder
    # on its VAE's encoder (fresh_decoder), E5 and E6 keep their baselines' joint decoders.
    assert by_group(trainings) == {
        "exp_gmm_latents": (2, 60 + 60),  # GPE's encoder; the VAE's joint training (E1 stops after cache_latents)
        "exp_encoder_stability": (9, 9 * 40),  # GME, MDS1, MDS2 at three rates, encoders only
        # E3 and E4 train nothing of their own for GPE: the level study's one encoder and a decoder per level
        # (conf/test: E3's levels 5.0, 3.5, 2.5 and E4's 5.0, 2.5 are three levels).
        # E4's VAE row runs there too: the joint VAE (E6's VAE reads it as well) and a fresh decoder.
        "gme_levels": (1 + 3 + 2, 60 + 3 * 60 + 60 + 60),
        # GPE: encoder probe 2 x 20, the stages 60 + 60, decoder probe 2 x 20 (on the stage's latents: no encoder
        # trained again); four baselines: joint probe 2 x 20 and the joint training 60, the kept decoder 0.
        "exp_wallclock": (2 + 1 + 2 + 1 + 4 * (2 + 1), 40 + 60 + 40 + 60 + 4 * (40 + 60)),
        # GPE: encoder, decoder, flow; VAE: its flow alone (its joint training is the study's joint VAE).
        "exp_generation_budget": (4, (60 + 60 + 60) + (0 + 60)),
        "shared": (1, 100),  # the feature classifier on the digits' labels
    }
    # Lines of the plan that train, by trainer (a probe's line holds all its rates); E1 .. E6 in each sum.
    assert Counter(t.trainer for t in trainings if t.runs) == {
        "encoder": 1 + 9 + 1 + 1 + 1,  # E1, E2, the level study, E5, E6
        "joint": 1 + 1 + 4,  # E1, the study's joint VAE (E4 and E6), E5's four baselines
        "decoder": 3 + 1 + 1 + 1,  # the level study's three, E4's VAE row, E5's and E6's GPE
        "probe": 2 + 4,  # GPE: encoder rates, decoder rates; each baseline: joint rates
        "flow": 2,
        "classifier": 1,
    }
    kept = [t for t in trainings if t.trainer == "decoder" and t.runs == 0]
    assert len(kept) == 5 and all(t.network is None for t in kept)  # E5's four baselines and E6's VAE
    flows_and_classifier = [t for t in trainings if t.trainer in ("flow", "classifier")]
    assert [t.steps for t in flows_and_classifier] == [60, 60, 100]
    assert plan_totals(estimate(trainings, plan_settings({}), PROJECT_ROOT, measure=lambda *args: 1.0))["steps"] == 1780


def test_the_compare_plan_in_conf_base(params):
    trainings = pipeline_trainings("compare", params)
    # conf/base: GPE's encoder 3000, decoder 4000, flow 6000; five baselines, each a joint training on the decoder
    # stage's 4000 steps, its kept decoder and a flow; the feature classifier 1500.
    assert by_group(trainings) == {"compare": (3 + 5 * 2, 3000 + 4000 + 6000 + 5 * (4000 + 6000)), "shared": (1, 1500)}


def test_each_distinct_network_is_measured_once_and_the_time_is_steps_times_its_step_time():
    trainings = pipeline_trainings("paper_report", environment_config("test"))
    measured = []

    def measure(network, warmup_steps, timed_steps):
        measured.append(json.dumps(network, sort_keys=True))
        return {"encoder": 2.0, "decoder": 1.0}.get(network["trainer"], 4.0)

    plan = estimate(trainings, plan_settings({"plan": {"warmup_steps": 1, "timed_steps": 2}}), PROJECT_ROOT, measure)
    # E1: GPE's encoder and the VAE's joint net on the gmm; E2: three losses on its wider MLP; the level study's encoder
    # and decoder (E5 and E6 train the same ones); the joint nets of the VAE, VAE+MDS, AE and AE+MDS (E4's VAE = E5's = E6's);
    # the flow (E6's two flows alike) and the classifier: 2 + 3 + 2 + 4 + 2 = 13.
    assert len(measured) == len(set(measured)) == 13
    assert plan.step_ms.keys() == set(measured)
    group = plan.groups()["gme_levels"]  # one encoder, three decoders, E4's VAE row (joint 4.0, fresh decoder 1.0)
    assert group["seconds"] == pytest.approx((60 * 2.0 + 3 * 60 * 1.0 + 60 * 4.0 + 60 * 1.0) / 1000)
    assert plan.groups()["shared"]["seconds"] == pytest.approx(100 * 4.0 / 1000)
    text = plan_markdown(plan, "kedro run --pipeline=paper_report --env test")
    assert "| **total** | 40 | 1,780 |" in text and "13 distinct networks" in text


def test_a_measured_step_time_runs_the_core_loop_and_leaves_the_random_state_alone():
    network = {
        "trainer": "decoder",
        "decoder": {"architecture": "mlp", "options": {"hidden": [8], "activation": "softplus", "output_activation": "tanh"}},
        "latent_dim": 3,
        "data": {"shape": [1, 4, 4], "dtype": "uint8", "classes": 10},
        "training": {
            "batch_size": 4,
            "device": "cpu",
            "precision": "auto",
            "compile": "auto",
            "grad_clip": 1.0,
            "ema_decay": 0.9,
        },
    }
    state = torch.get_rng_state()
    ms = measure_step_ms(network, warmup_steps=1, timed_steps=2)
    assert math.isfinite(ms) and ms > 0
    assert torch.equal(torch.get_rng_state(), state)


def test_the_committed_h200_table_gives_the_paper_networks_step_times():
    table = read_device_table(H200_TABLE.read_text())
    assert table[("paper_mnist", "encoder", 100, "bf16+compile")] == 5.08
    assert table[("paper_cifar10", "decoder", 100, "fp32")] == 30.18  # a row whose network cell repeats the one above
    assert table[("paper_celebahq", "decoder", 50, "bf16")] == 53.98
    mnist = with_value(environment_config("mnist"), "paper_report.seeds", 1)  # one seed: the figures below are per seed
    trainings = pipeline_trainings("paper_report", mnist)
    plan = estimate(trainings, plan_settings({"plan": {"device_table": "nvidia-h200"}}), PROJECT_ROOT)
    groups = plan.groups()
    # E3 and E4 under conf/mnist: the level study's paper_mnist encoder and a decoder for each of E3's levels (conf/base
    # 0.1, 0.03, 0.01) and E4's (0.03, 0.004), four, 1,000,000 steps each at most, bf16+compile.
    # E4's VAE row there too: the joint VAE (5.08 + 5.13, the table's encoder and decoder rows; E6 reads it too) and a
    # fresh decoder.
    assert groups["gme_levels"]["seconds"] == pytest.approx(1_000_000 * (5.08 + 4 * 5.13 + (5.08 + 5.13) + 5.13) / 1000)
    assert groups["gme_levels"]["unestimated_steps"] == 0
    # E2's 4-layer MLPs are not in the table: counted, not estimated.
    assert groups["exp_encoder_stability"] == {"runs": 9, "steps": 27_000, "seconds": 0.0, "unestimated_steps": 27_000}
    joint = next(t for t in trainings if t.namespace == "gme_levels.seed_0.vae_joint" and t.trainer == "joint")
    assert table_step_ms(json.loads(joint.network), table) == (
        pytest.approx(5.08 + 5.13),
        "table, bf16+compile: encoder row + decoder row",
    )
    fp32 = with_value(mnist, "train_decoder.training.precision", "fp32")
    decoder = next(t for t in pipeline_trainings("exp_decoder_vs_gme", with_value(fp32, "paper_report.seeds", 1)) if t.trainer == "decoder")
    assert table_step_ms(json.loads(decoder.network), table)[0] is None  # fp32 compiled was not measured


@pytest.mark.parametrize(
    "plan, message",
    [
        (
            {"device_table": "tpu-v9"},
            r"plan.device_table is 'tpu-v9', but .* has no gpu-check-tpu-v9-\*.md: the devices measured there are \['nvidia-h200'\]",
        ),
        ({"warmup_steps": 0}, "plan.warmup_steps must be an integer >= 1, got 0"),
        ({"timed": 3}, "plan.timed is not a plan setting"),
        ({"device_table": "../x"}, "plan.device_table must be null or a device name"),
    ],
)
def test_a_bad_plan_setting_names_its_key(plan, message):
    with pytest.raises(ParameterError, match=message):
        estimate([], plan_settings({"plan": plan}), PROJECT_ROOT)


def files_under(project: Path) -> dict[str, float]:
    return {str(path.relative_to(project)): path.stat().st_mtime for path in project.rglob("*") if path.is_file()}


def test_kedro_plan_writes_the_plan_and_nothing_else(tmp_path):
    project = make_project_copy(tmp_path / "project")
    before = files_under(project)
    started = time.perf_counter()
    result = kedro(project, "plan", "--pipeline=paper_report", "--env", "test", timeout=600)
    seconds = time.perf_counter() - started
    print(f"kedro plan --pipeline=paper_report --env test took {seconds:.1f} s")  # noqa: T201 (a shared machine)
    after = files_under(project)
    changed = {name for name in after if after[name] != before.get(name)}
    assert changed - LOG_FILES == {"data/08_reporting/plan.md"}
    assert "train_encoder step" not in result.output and "Running node" not in result.output
    assert "Plan: 40 trainings, 1,780 optimiser steps at most" in result.output
    plan = (project / "data" / "08_reporting" / "plan.md").read_text()
    assert plan.startswith("# Plan of `kedro plan --pipeline=paper_report --env test`")
    assert "| **total** | 40 | 1,780 |" in plan and "measured on this machine (cpu)" in plan
    assert seconds < 300  # generous: the suite runs on a shared machine


def test_a_bad_pipeline_name_is_one_line(tmp_path):
    project = make_project_copy(tmp_path / "project")
    result = kedro(project, "plan", "--pipeline=paper", timeout=300, check=False)
    assert result.returncode != 0 and "there is no pipeline named 'paper'" in result.output
    assert not (project / "data" / "08_reporting" / "plan.md").exists()


def test_a_run_with_variants_logs_and_writes_its_plan_before_its_first_training(tmp_path):
    project = make_project_copy(tmp_path / "project")
    result = kedro(project, "run", "--pipeline=exp_gmm_latents", "--env", "test", timeout=600)
    lines = result.output.splitlines()
    plan_line = next(i for i, line in enumerate(lines) if "Plan: 2 trainings, 120 optimiser steps at most" in line)
    first_training = next(i for i, line in enumerate(lines) if "Running node: train_encoder" in line)
    assert plan_line < first_training
    assert any("Plan:   E1 exp_gmm_latents: 2 trainings, 120 steps at most" in line for line in lines)
    plan = (project / "data" / "08_reporting" / "plan.md").read_text()
    assert plan.startswith("# Plan of `kedro run --pipeline=exp_gmm_latents --env test`")
    assert "| exp_gmm_latents.seed_0.vae | joint |" in plan
