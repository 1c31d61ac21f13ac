"""The loop's snapshot_at levels (one run serves every target level) and its reuse of finished trainings."""

import logging
import math
from functools import partial

import pytest
import torch

from gpe_pipeline.core.training import is_finished, load_checkpoint, train

from .test_training import config, make_problem, noisy_mse, run_interrupted


def validation_error(model, x, y):
    return {"mse": float((model(x) - y).square().mean())}


def validation(seed=1):
    """evaluate(model): the MSE on 64 other points of make_problem()'s linear map (a partial: its inputs are described)."""
    generator = torch.Generator().manual_seed(0)
    torch.randn(64, 3, generator=generator)  # make_problem's training points come first
    weights = torch.randn(3, 2, generator=generator)
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(seed))
    return partial(validation_error, x=x, y=x @ weights)


def level_settings(tmp_path, **overrides):
    """60 steps evaluated every 5 on the moving average, against validation_mse; no checkpoint unless given one."""
    settings = dict(max_steps=60, eval_every=5, ema_decay=0.9, target_metric="mse", checkpoint_path=None)
    return config(tmp_path, **{**settings, **overrides})


def validation_curve(tmp_path):
    """[(step, validation_mse)] of the level_settings run without levels or a target."""
    model, data = make_problem()
    history = train(model, noisy_mse, data, level_settings(tmp_path), evaluate=validation()).history
    return [(record["step"], record["validation_mse"]) for record in history if "validation_mse" in record]


def first_step_at_or_below(curve, level):
    return next((step for step, value in curve if value <= level), None)


def assert_same_weights(expected, actual):
    assert expected.keys() == actual.keys()
    for key, value in expected.items():
        assert torch.equal(value, actual[key]), key


def test_a_level_snapshot_is_exactly_what_a_run_with_that_target_returns(tmp_path):
    curve = validation_curve(tmp_path)
    # A new best after some evaluations, and a level between it and the earlier best: both first reached there.
    index = next(i for i in range(3, len(curve)) if curve[i][1] < min(value for _, value in curve[:i]))
    earlier_best = min(value for _, value in curve[:index])
    levels = (curve[1][1], curve[index][1], (curve[index][1] + earlier_best) / 2)
    never = min(value for _, value in curve) / 2
    model, data = make_problem()
    long = train(model, noisy_mse, data, level_settings(tmp_path, snapshot_at=(*levels, never)), evaluate=validation())
    assert long.steps == 60, "levels do not stop the run"
    assert set(long.level_snapshots) == set(levels), "a level never reached has no snapshot"
    assert long.level_snapshots[levels[1]]["step"] == long.level_snapshots[levels[2]]["step"] == curve[index][0]
    for level in levels:
        model, data = make_problem()
        stopped = train(model, noisy_mse, data, level_settings(tmp_path, target=level), evaluate=validation())
        snapshot = long.level_snapshots[level]
        assert snapshot["step"] == stopped.steps == first_step_at_or_below(curve, level)
        assert snapshot["value"] == stopped.final_metrics["validation_mse"] <= level
        assert_same_weights(stopped.model.state_dict(), snapshot["weights"])


def test_level_snapshots_survive_a_resume_and_a_level_asked_for_too_late_starts_fresh(tmp_path, caplog):
    curve = validation_curve(tmp_path)
    # One level reached by the checkpoint of step 20, one after it (a new best after step 25).
    late = next(value for i, (step, value) in enumerate(curve) if step > 25 and value < min(v for _, v in curve[:i]))
    levels = (curve[0][1], late)
    model, data = make_problem()
    reference = train(model, noisy_mse, data, level_settings(tmp_path, snapshot_at=levels), evaluate=validation())
    assert reference.level_snapshots[levels[0]]["step"] <= 20 < reference.level_snapshots[levels[1]]["step"]

    for asked_first in (levels, ()):
        folder = tmp_path / f"asked_{len(asked_first)}"
        settings = partial(level_settings, tmp_path, checkpoint_path=str(folder / "unit.pt"))
        model, data = make_problem()
        run_interrupted(model, noisy_mse, data, settings(snapshot_at=asked_first), step=25, evaluate=validation())
        kept = load_checkpoint(folder / "unit.pt")["level_snapshots"]
        assert list(kept) == ([levels[0]] if asked_first else []), "the checkpoint of step 20 holds the level reached"
        model, data = make_problem()
        steps_seen = []
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="gpe_pipeline.core.training"):
            resumed = train(
                model, noisy_mse, data, settings(snapshot_at=levels), evaluate=validation(), on_step_end=steps_seen.append
            )
        warning = " ".join(caplog.text.split())
        if asked_first:
            assert steps_seen[0] == 21 and "resuming from checkpoint" in warning
        else:  # the level of step 5 went by without a snapshot: only a fresh run can take it
            assert steps_seen[0] == 1
            assert f"snapshot_at levels [{levels[0]}] were reached before its step 20 with no snapshot kept" in warning
        for level in levels:
            assert resumed.level_snapshots[level]["step"] == reference.level_snapshots[level]["step"]
            assert resumed.level_snapshots[level]["value"] == reference.level_snapshots[level]["value"]
            assert_same_weights(reference.level_snapshots[level]["weights"], resumed.level_snapshots[level]["weights"])


@pytest.mark.parametrize("levels", [[0.1, 0.0], [-0.5], ["0.1"], [True], 0.1, [math.inf], [math.nan]])
def test_snapshot_levels_must_be_positive_numbers(tmp_path, levels):
    with pytest.raises(ValueError, match=r"unit.snapshot_at must be a list of positive numbers .*change unit.snapshot_at"):
        config(tmp_path, target_metric="mse", snapshot_at=levels)


def test_snapshot_levels_need_a_target_metric_and_reuse_finished_a_boolean(tmp_path):
    with pytest.raises(ValueError, match=r"unit.snapshot_at needs a trainer with a target metric .*got \(0.1,\)"):
        config(tmp_path, snapshot_at=[0.1])
    with pytest.raises(ValueError, match="unit.reuse_finished must be true or false"):
        config(tmp_path, reuse_finished="yes")
    assert config(tmp_path, target_metric="mse", snapshot_at=[1, 0.5]).snapshot_at == (1.0, 0.5)
    assert config(tmp_path, snapshot_at=None).snapshot_at == ()


class CountedLoss:
    """noisy_mse, counting its calls: the optimiser steps a training takes (a class: its count is not in the fingerprint)."""

    def __init__(self):
        self.calls = 0

    def __call__(self, model, batch):
        self.calls += 1
        return noisy_mse(model, batch)


def reuse_settings(tmp_path, **overrides):
    """30 steps with a moving average, snapshots of both kinds and evaluations every 5, checkpointed in tmp_path."""
    settings = dict(ema_decay=0.9, eval_every=5, target_metric="mse", snapshot_steps=[10], snapshot_at=[1e6])
    return config(tmp_path, **{**settings, **overrides})


def train_counted(settings, evaluate=None, caplog=None):
    """(result, optimiser steps taken, metrics logged as (step, metrics), the log text on one line) of one train()."""
    model, data = make_problem()
    torch.nn.init.zeros_(model[0].weight)  # other initial weights than the first run's: a reuse must replace them
    loss, logged = CountedLoss(), []
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="gpe_pipeline.core.training"):
        result = train(model, loss, data, settings, evaluate or validation(), lambda m, s: logged.append((s, m)))
    return result, loss.calls, logged, " ".join(caplog.text.split())


def test_a_second_training_with_the_same_settings_reuses_the_finished_one(tmp_path, caplog):
    path = tmp_path / "ckpt" / "unit.pt"
    first, steps, logged, _ = train_counted(reuse_settings(tmp_path), caplog=caplog)
    assert steps == 30 and is_finished(load_checkpoint(path))
    again, steps_again, logged_again, log = train_counted(reuse_settings(tmp_path), caplog=caplog)
    assert steps_again == 0
    assert f"unit: reusing the finished training in {path} (same fingerprint): 30 steps, 0 trained now" in log
    assert "unit step" not in log, "no progress lines: nothing trained"
    assert_same_weights(first.model.state_dict(), again.model.state_dict())
    assert again.history == first.history and again.final_metrics == first.final_metrics
    assert (again.steps, again.seconds, again.stop_reason, again.diverged_step) == (30, first.seconds, "max_steps", None)
    assert_same_weights(first.snapshots[10], again.snapshots[10])
    assert again.level_snapshots.keys() == {1e6} and again.level_snapshots[1e6]["step"] == 5
    assert_same_weights(first.level_snapshots[1e6]["weights"], again.level_snapshots[1e6]["weights"])
    assert logged_again == logged, "the replay logs the stored records at their steps"
    assert [step for step, _ in logged] == [5, 10, 15, 20, 25, 30]


def test_a_replay_to_a_batching_logger_is_one_write_of_every_record(tmp_path, caplog):
    class BatchingLogger:
        """Like tracking.MlflowMetricsLogger: a callable that also takes many records at once."""

        def __init__(self):
            self.calls, self.batches = [], []

        def __call__(self, metrics, step):
            self.calls.append((step, metrics))

        def log_records(self, records):
            self.batches.append(records)

    _, _, logged, _ = train_counted(reuse_settings(tmp_path), caplog=caplog)
    model, data = make_problem()
    logger = BatchingLogger()
    train(model, CountedLoss(), data, reuse_settings(tmp_path), validation(), logger)
    assert logger.calls == [] and len(logger.batches) == 1, "one batched write, no per-record calls"
    assert [(step, metrics) for metrics, step in logger.batches[0]] == logged


@pytest.mark.parametrize(
    "overrides, evaluation_seed, reason",
    [
        ({"max_steps": 40}, 1, "stop and record settings: max_steps 30 -> 40"),
        ({"max_steps": 20}, 1, "stop and record settings: max_steps 30 -> 20"),
        ({"target": 0.5}, 1, "stop and record settings: target null -> 0.5"),
        ({"eval_every": 10}, 1, "stop and record settings: eval_every 5 -> 10"),
        ({"snapshot_steps": [20]}, 1, "stop and record settings: snapshot_steps[0] 10 -> 20"),
        ({"snapshot_at": [1e5]}, 1, "stop and record settings: snapshot_at[0] 1000000.0 -> 100000.0"),
        ({"divergence_factor": 1e9}, 1, "stop and record settings: divergence_factor null -> 1000000000.0"),
        ({"lr": 5e-3}, 1, "training settings: lr 0.01 -> 0.005"),
        ({}, 2, "validation function: x.first_rows_sum"),
    ],
    ids=["more steps", "fewer steps", "target", "eval_every", "snapshot_steps", "snapshot_at", "divergence", "lr", "evaluation"],
)
def test_a_finished_training_of_other_settings_is_trained_afresh_and_says_why(
    tmp_path, caplog, overrides, evaluation_seed, reason
):
    train_counted(reuse_settings(tmp_path), caplog=caplog)
    changed = reuse_settings(tmp_path, **overrides)
    result, steps, _, log = train_counted(changed, validation(evaluation_seed), caplog)
    assert f"ignoring checkpoint {tmp_path / 'ckpt' / 'unit.pt'} and starting fresh: it belongs to another run" in log
    assert reason in log and "reusing" not in log
    assert steps == result.steps > 0 and "resuming" not in log, "a finished checkpoint is never resumed"
    fresh, _, _, _ = train_counted(reuse_settings(tmp_path / "fresh", **overrides), validation(evaluation_seed), caplog)
    assert_same_weights(fresh.model.state_dict(), result.model.state_dict())


def test_reuse_finished_false_trains_again(tmp_path, caplog):
    first, _, _, _ = train_counted(reuse_settings(tmp_path), caplog=caplog)
    again, steps, _, log = train_counted(reuse_settings(tmp_path, reuse_finished=False), caplog=caplog)
    assert steps == 30 and "reuse_finished is false, so the finished training in" in log and "reusing" not in log
    assert_same_weights(first.model.state_dict(), again.model.state_dict())
    # The switch is not part of the fingerprint: the training it wrote serves a run that allows reuse.
    _, steps, _, log = train_counted(reuse_settings(tmp_path), caplog=caplog)
    assert steps == 0 and "reusing the finished training" in log
