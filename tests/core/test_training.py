"""The one training loop: exact resume, NaN guard, early stopping, logging cadence, config errors."""

import logging
import time

import pytest
import torch
from torch import nn

from gpe_pipeline.core.training import NonFiniteLossError, TrainConfig, load_checkpoint, train


class Interrupt(Exception):
    pass


def make_problem(seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 3, generator=generator)
    y = x @ torch.randn(3, 2, generator=generator)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 16), nn.BatchNorm1d(16), nn.Tanh(), nn.Linear(16, 2))
    return model, [x, y]


def noisy_mse(model, batch):
    x, y = batch
    # Uses the global RNG, so an exact resume must restore it too.
    return (model(x + 0.05 * torch.randn_like(x)) - y).square().mean()


def config(tmp_path, **overrides):
    settings = dict(max_steps=30, batch_size=8, lr=1e-2, log_every=5, eval_every=10, checkpoint_every=10, name="unit")
    settings["checkpoint_path"] = str(tmp_path / "ckpt" / "unit.pt")
    settings.update(overrides)
    return TrainConfig(**settings)


def test_interrupted_run_resumes_from_checkpoint_and_matches_an_uninterrupted_run(tmp_path, caplog):
    model, data = make_problem()
    reference = train(model, noisy_mse, data, config(tmp_path / "a"))

    model, data = make_problem()

    def interrupt_at_25(step):
        if step == 25:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(model, noisy_mse, data, config(tmp_path / "b"), on_step_end=interrupt_at_25)
    checkpoint = load_checkpoint(tmp_path / "b" / "ckpt" / "unit.pt")
    assert checkpoint["step"] == 20

    model, data = make_problem()  # a fresh process would rebuild the model from scratch
    steps_seen = []
    with caplog.at_level(logging.INFO, logger="gpe_pipeline.core.training"):
        resumed = train(model, noisy_mse, data, config(tmp_path / "b"), on_step_end=steps_seen.append)
    assert steps_seen[0] == 21, "the re-run must continue after the checkpoint, not from step 0"
    assert "resuming from checkpoint" in caplog.text
    assert resumed.steps == 30
    for key, value in reference.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    assert [r["step"] for r in resumed.history] == [r["step"] for r in reference.history]
    assert not (tmp_path / "b" / "ckpt" / "unit.pt").exists(), "a finished stage removes its checkpoint"
    assert list((tmp_path / "b" / "ckpt").iterdir()) == [], "no temporary files are left behind"


def test_checkpoint_of_other_settings_is_ignored(tmp_path, caplog):
    model, data = make_problem()
    with pytest.raises(Interrupt):
        train(
            model, noisy_mse, data, config(tmp_path), on_step_end=lambda s: (_ for _ in ()).throw(Interrupt) if s == 15 else None
        )
    model, data = make_problem()
    steps_seen = []
    with caplog.at_level(logging.WARNING):
        train(model, noisy_mse, data, config(tmp_path, lr=5e-3), on_step_end=steps_seen.append)
    assert steps_seen[0] == 1
    assert "ignoring checkpoint" in caplog.text


def test_nan_loss_names_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    model, data = make_problem()

    def loss_that_explodes(model, batch):
        loss_that_explodes.calls += 1
        loss = noisy_mse(model, batch)
        return loss * float("nan") if loss_that_explodes.calls >= 13 else loss

    loss_that_explodes.calls = 0
    with pytest.raises(NonFiniteLossError, match=r"at step 13.*last good checkpoint \(step 10\)"):
        train(model, loss_that_explodes, data, config(tmp_path))
    checkpoint = load_checkpoint(tmp_path / "ckpt" / "unit.pt")
    assert checkpoint["step"] == 10
    assert all(torch.isfinite(v).all() for v in checkpoint["model"].values() if v.is_floating_point())


def test_stops_at_the_validation_target(tmp_path):
    model, data = make_problem()
    evaluations = iter([0.5, 0.05, 0.01])
    result = train(
        model,
        noisy_mse,
        data,
        config(tmp_path, max_steps=1000, target=0.1, target_metric="error"),
        evaluate=lambda m: {"error": next(evaluations)},
    )
    assert result.steps == 20
    assert "validation_error 0.05 <= target 0.1" in result.stop_reason
    assert result.final_metrics == {"validation_error": 0.05}


def test_metrics_are_logged_every_log_every_steps_not_every_step(tmp_path):
    model, data = make_problem()
    logged = []
    train(model, noisy_mse, data, config(tmp_path, max_steps=20), log_metrics=lambda m, s: logged.append((s, m)))
    assert [s for s, _ in logged] == [5, 10, 15, 20]
    assert {"train_loss", "steps_per_sec", "elapsed_s"} <= set(logged[0][1])
    assert all(m["steps_per_sec"] > 0 for _, m in logged)


def test_training_reduces_the_loss(tmp_path):
    model, data = make_problem()
    result = train(model, noisy_mse, data, config(tmp_path, max_steps=200, log_every=50, eval_every=50))
    assert result.history[-1]["train_loss"] < 0.3 * result.history[0]["train_loss"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"lr": 0.0}, "unit.lr must be a positive number"),
        ({"lr": -1e-3}, "unit.lr must be a positive number"),
        ({"batch_size": 1, "min_batch_size": 2}, "unit.batch_size must be an integer >= 2 for a pairwise loss"),
        ({"max_steps": 0}, "unit.max_steps must be an integer >= 1"),
        ({"precision": "fp8"}, "unit.precision must be one of"),
        ({"betas": [0.9, 1.5]}, "unit.betas"),
        ({"device": "tpu"}, "unit.device"),
    ],
)
def test_bad_settings_fail_with_the_key_to_change(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        config(tmp_path, **overrides)


def test_batch_larger_than_the_data_is_refused(tmp_path):
    model, data = make_problem()
    with pytest.raises(ValueError, match="larger than the 64 training examples"):
        train(model, noisy_mse, data, config(tmp_path, batch_size=65))


def test_moving_average_weights_are_returned_and_resume_exactly(tmp_path):
    model, data = make_problem()
    reference = train(model, noisy_mse, data, config(tmp_path / "a", ema_decay=0.9))
    raw_model, data = make_problem()
    raw = train(raw_model, noisy_mse, data, config(tmp_path / "c"))
    assert not torch.equal(reference.model[0].weight, raw.model[0].weight), "the average differs from the last weights"

    model, data = make_problem()
    with pytest.raises(Interrupt):
        train(
            model,
            noisy_mse,
            data,
            config(tmp_path / "b", ema_decay=0.9),
            on_step_end=lambda s: (_ for _ in ()).throw(Interrupt) if s == 25 else None,
        )
    model, data = make_problem()
    resumed = train(model, noisy_mse, data, config(tmp_path / "b", ema_decay=0.9))
    for key, value in reference.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


def test_moving_average_matches_its_definition():
    from gpe_pipeline.core.training import update_ema

    average, current = nn.Linear(2, 1), nn.Linear(2, 1)
    expected = 0.75 * average.weight.detach().clone() + 0.25 * current.weight.detach()
    update_ema(average, current, 0.75)
    assert torch.allclose(average.weight, expected)


def test_mixed_precision_switch_leaves_cpu_results_unchanged(tmp_path):
    results = {}
    for precision in ("fp32", "bf16", "auto"):
        model, data = make_problem()
        results[precision] = train(model, noisy_mse, data, config(tmp_path / precision, precision=precision)).model.state_dict()
    for key, value in results["fp32"].items():
        assert torch.equal(value, results["bf16"][key]) and torch.equal(value, results["auto"][key]), key


def test_a_loss_dict_is_minimised_by_its_loss_and_logs_its_terms(tmp_path):
    model, data = make_problem()

    def loss_with_terms(model, batch):
        error = noisy_mse(model, batch)
        return {"loss": error, "half": error / 2}

    result = train(model, loss_with_terms, data, config(tmp_path, max_steps=10, log_every=5, eval_every=10))
    for record in result.history:
        assert record["train_half"] == pytest.approx(record["train_loss"] / 2, rel=1e-6)


def test_train_elapsed_seconds_leave_out_evaluation(tmp_path):
    model, data = make_problem()

    def slow_evaluation(model):
        time.sleep(0.2)
        return {"zero": 0.0}

    result = train(model, noisy_mse, data, config(tmp_path, max_steps=20, eval_every=5), evaluate=slow_evaluation)
    last = result.history[-1]
    # elapsed_s of a record is read before that record's own evaluation: the ones at steps 5, 10 and 15 are in it.
    assert last["elapsed_s"] - last["train_elapsed_s"] >= 3 * 0.2
    assert 0 < last["train_elapsed_s"] < last["elapsed_s"]
