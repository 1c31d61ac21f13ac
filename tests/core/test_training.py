"""The one training loop: exact resume, NaN guard, early stopping, logging cadence, config errors."""

import json
import logging
import math
import time
from functools import partial

import pytest
import torch
from torch import nn

from gpe_pipeline.core.models import build_model
from gpe_pipeline.core.training import NonFiniteLossError, TrainConfig, is_finished, load_checkpoint, train


class Interrupt(Exception):
    pass


def make_problem(seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 3, generator=generator)
    y = x @ torch.randn(3, 2, generator=generator)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 16), nn.BatchNorm1d(16), nn.Tanh(), nn.Linear(16, 2))
    return model, [x, y]


def interrupt_at(step):
    def stop(current):
        if current == step:
            raise Interrupt

    return stop


def run_interrupted(model, loss, data, settings, step=15, evaluate=None):
    """Train until `step` and crash there, leaving the checkpoint of step 10 (with checkpoint_every 10)."""
    with pytest.raises(Interrupt):
        train(model, loss, data, settings, evaluate=evaluate, on_step_end=interrupt_at(step))


def rerun_starts_fresh(model, loss, data, settings, caplog) -> str:
    """Re-run after an interruption; assert it started at step 1 and return its warning on one line."""
    steps_seen = []
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gpe_pipeline.core.training"):
        train(model, loss, data, settings, on_step_end=steps_seen.append)
    assert steps_seen[0] == 1, "a checkpoint of another run must not be resumed"
    return " ".join(caplog.text.split())


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
    assert is_finished(load_checkpoint(tmp_path / "b" / "ckpt" / "unit.pt")), "a finished stage keeps its result there"
    assert [p.name for p in (tmp_path / "b" / "ckpt").iterdir()] == ["unit.pt"], "no temporary files are left behind"


def test_checkpoint_of_other_settings_is_ignored(tmp_path, caplog):
    model, data = make_problem()
    run_interrupted(model, noisy_mse, data, config(tmp_path))
    model, data = make_problem()
    warning = rerun_starts_fresh(model, noisy_mse, data, config(tmp_path, lr=5e-3), caplog)
    assert f"ignoring checkpoint {tmp_path / 'ckpt' / 'unit.pt'} and starting fresh: it belongs to another run" in warning
    assert "training settings: lr 0.01 -> 0.005" in warning


def plain_mse(model, batch):
    x, y = batch
    return (model(x) - y).square().mean()


def augmented_mse(model, batch, noise=0.05, flip=False):
    x, y = batch
    x = x.flip(-1) if flip else x
    return (model(x + noise * torch.randn_like(x)) - y).square().mean()


@pytest.mark.parametrize(
    "first, second, reason",
    [
        (noisy_mse, plain_mse, 'loss: function "tests.core.test_training.noisy_mse" -> "tests.core.test_training.plain_mse"'),
        (partial(augmented_mse, noise=0.05), partial(augmented_mse, noise=0.1), "loss: noise 0.05 -> 0.1"),
        (partial(augmented_mse, flip=False), partial(augmented_mse, flip=True), "loss: flip false -> true"),
    ],
    ids=["loss function", "loss weight", "augmentation"],
)
def test_a_changed_loss_after_an_interruption_starts_fresh_and_says_why(tmp_path, caplog, first, second, reason):
    model, data = make_problem()
    run_interrupted(model, first, data, config(tmp_path))
    model, data = make_problem()
    warning = rerun_starts_fresh(model, second, data, config(tmp_path), caplog)
    assert "starting fresh" in warning and reason in warning
    assert "training settings" not in warning and "model" not in warning and "data" not in warning


def built_problem(activation):
    """A model made by build_model (so it has a build spec) and the make_problem data: latent (3,) -> target (2,)."""
    _, data = make_problem()
    torch.manual_seed(0)
    model = build_model(
        "decoder", "mlp", data_shape=[2], latent_dim=3, hidden=[16], activation=activation, output_activation="none"
    )
    return model, noisy_mse, data


def test_a_changed_activation_after_an_interruption_starts_fresh_and_says_why(tmp_path, caplog):
    run_interrupted(*built_problem("softplus"), config(tmp_path))
    warning = rerun_starts_fresh(*built_problem("relu"), config(tmp_path), caplog)
    assert 'model build spec: activation "softplus" -> "relu"' in warning
    # the same settings again resume where the interrupted run stopped
    run_interrupted(*built_problem("silu"), config(tmp_path / "same"))
    steps_seen = []
    train(*built_problem("silu"), config(tmp_path / "same"), on_step_end=steps_seen.append)
    assert steps_seen[0] == 11


def test_the_checkpoint_holds_the_fingerprint_by_part_computed_before_data_moves(tmp_path, monkeypatch):
    from gpe_pipeline.core import training

    calls = []
    for function in ("fingerprint_parts", "place_data"):
        original = getattr(training, function)
        monkeypatch.setattr(training, function, lambda *a, _f=original, _n=function, **k: calls.append(_n) or _f(*a, **k))
    model, data = make_problem()
    run_interrupted(model, partial(augmented_mse, noise=0.1), data, config(tmp_path))
    assert calls == ["fingerprint_parts", "place_data"], "the data summary is taken on the CPU tensors"
    stored = json.loads(load_checkpoint(tmp_path / "ckpt" / "unit.pt")["fingerprint"])
    assert set(stored) == {"settings", "model_build_spec", "model_layers", "loss", "data"}
    assert stored["loss"] == {"function": "tests.core.test_training.augmented_mse", "noise": 0.1}
    assert stored["settings"]["lr"] == 0.01 and stored["data"][0]["shape"] == [64, 3]


def test_the_encoder_loss_name_and_augmentation_are_part_of_the_fingerprint():
    from gpe_pipeline.core.step_losses import encoder_step_loss
    from gpe_pipeline.core.training import fingerprint_parts

    model, data = make_problem()
    settings = TrainConfig(max_steps=1, batch_size=8, lr=1e-3)
    augment = {"hflip": True, "crop_scale": 0.9}
    parts = fingerprint_parts(settings, model, partial(encoder_step_loss, loss_name="mds2", augment=augment), data)
    assert parts["loss"] == {
        "function": "gpe_pipeline.core.step_losses.encoder_step_loss",
        "loss_name": "mds2",
        "augment": augment,
    }
    assert set(parts) == {"settings", "model_build_spec", "model_layers", "loss", "data"}
    assert parts["model_build_spec"] is None


def test_a_checkpoint_of_an_older_format_is_not_resumed(tmp_path, caplog):
    model, data = make_problem()
    run_interrupted(model, noisy_mse, data, config(tmp_path))
    path = tmp_path / "ckpt" / "unit.pt"
    state = load_checkpoint(path)
    state["fingerprint"] = "0123456789abcdef"  # the bare hash older versions stored
    torch.save(state, path)
    model, data = make_problem()
    assert "written by an older version" in rerun_starts_fresh(model, noisy_mse, data, config(tmp_path), caplog)


def random_bytes(raw: bytes) -> bytes:
    return bytes(torch.randint(0, 256, (len(raw),), generator=torch.Generator().manual_seed(0), dtype=torch.uint8).tolist())


@pytest.mark.parametrize(
    "damage",
    [lambda raw: raw[: len(raw) // 2], random_bytes, lambda raw: b""],
    ids=["truncated", "random bytes", "empty"],
)
def test_a_damaged_checkpoint_is_moved_aside_and_training_starts_fresh(tmp_path, caplog, damage):
    model, data = make_problem()
    reference = train(model, noisy_mse, data, config(tmp_path / "reference"))
    model, data = make_problem()
    run_interrupted(model, noisy_mse, data, config(tmp_path))
    path = tmp_path / "ckpt" / "unit.pt"
    damaged = damage(path.read_bytes())
    path.write_bytes(damaged)

    model, data = make_problem()
    warning = rerun_starts_fresh(model, noisy_mse, data, config(tmp_path, max_steps=15), caplog)
    (aside,) = (tmp_path / "ckpt").glob("unit.pt.corrupt-*")
    assert aside.read_bytes() == damaged, "the damaged file is kept, renamed"
    assert f"checkpoint {path} cannot be read (truncated, damaged or not a file this project wrote" in warning
    assert f"moved it to {aside} and starting fresh" in warning
    assert "weights_only" not in warning, "never the advice to load the file unsafely"
    model, data = make_problem()
    again = train(model, noisy_mse, data, config(tmp_path))  # the same run from scratch matches an uninterrupted one
    for key, value in reference.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[key]), key


def test_a_file_that_is_not_a_checkpoint_is_moved_aside(tmp_path, caplog):
    path = tmp_path / "ckpt" / "unit.pt"
    path.parent.mkdir()
    torch.save({"weights": torch.zeros(2)}, path)  # readable, but not what train() writes
    model, data = make_problem()
    warning = rerun_starts_fresh(model, noisy_mse, data, config(tmp_path, max_steps=5), caplog)
    assert "cannot be read (not a training checkpoint" in warning and len(list(path.parent.glob("unit.pt.corrupt-*"))) == 1


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


def test_checkpoint_steps_add_records_only_when_there_is_a_file_to_write(tmp_path):
    steps = {}
    for label, path in (("with a file", tmp_path / "ckpt" / "unit.pt"), ("without", None)):
        model, data = make_problem()
        settings = config(tmp_path, max_steps=20, checkpoint_every=7, checkpoint_path=path)
        steps[label] = [record["step"] for record in train(model, noisy_mse, data, settings).history]
    assert steps == {"with a file": [5, 7, 10, 14, 15, 20], "without": [5, 10, 15, 20]}


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
    # after 30 steps the warm-up decay (31 / 40 = 0.775) exceeds 0.75: the configured decay applies
    expected = 0.75 * average.weight.detach().clone() + 0.25 * current.weight.detach()
    update_ema(average, current, 0.75, step=30)
    assert torch.allclose(average.weight, expected)


def test_the_moving_average_warms_up_with_the_step():
    from gpe_pipeline.core.training import ema_decay_at, update_ema

    average, current = nn.Linear(2, 1), nn.Linear(2, 1)
    initial = average.weight.detach().clone()
    update_ema(average, current, 0.999, step=1)  # the first update: decay (1 + 1) / (10 + 1) = 2 / 11
    assert torch.allclose(average.weight, 2 / 11 * initial + 9 / 11 * current.weight.detach())
    assert ema_decay_at(0.999, 1) == pytest.approx(2 / 11) and ema_decay_at(0.999, 90) == pytest.approx(0.91)
    assert ema_decay_at(0.999, 8990) == 0.999 and ema_decay_at(0.999, 10**6) == 0.999  # long runs: the configured decay
    assert ema_decay_at(0.5, 100) == 0.5  # never above the configured decay
    # 100 steps towards fixed weights: the initial weights keep the product of the decays, which telescopes to
    # 10! * 101! / 110! (about 2e-12), not the 0.999^100 = 0.90 of a fixed decay
    average = nn.Linear(2, 1)
    initial = average.weight.detach().clone()
    for step in range(1, 101):
        update_ema(average, current, 0.999, step)
    kept = math.prod(ema_decay_at(0.999, step) for step in range(1, 101))
    assert kept == pytest.approx(math.factorial(10) * math.factorial(101) / math.factorial(110), rel=1e-9)
    assert torch.allclose(average.weight, kept * initial + (1 - kept) * current.weight.detach(), atol=1e-6)


def test_mixed_precision_switch_leaves_cpu_results_unchanged(tmp_path):
    results = {}
    for precision in ("fp32", "bf16", "auto"):
        model, data = make_problem()
        settings = config(tmp_path / precision, precision=precision, device="cpu")
        results[precision] = train(model, noisy_mse, data, settings).model.state_dict()
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


def test_on_divergence_stop_records_the_step_and_returns(tmp_path):
    model, data = make_problem()
    settings = dict(max_steps=200, log_every=5, eval_every=50, lr=1.0)
    with pytest.raises(NonFiniteLossError):
        train(model, lambda m, b: noisy_mse(m, b) * float("inf"), data, config(tmp_path / "a", **settings))
    model, data = make_problem()
    result = train(
        model, lambda m, b: noisy_mse(m, b) * float("inf"), data, config(tmp_path / "b", on_divergence="stop", **settings)
    )
    assert result.diverged_step == 1 and result.steps == 5 and result.stop_reason.startswith("diverged")
    assert result.history[-1]["diverged_step"] == 1


def test_snapshot_steps_beyond_max_steps_are_refused_with_the_key(tmp_path):
    with pytest.raises(ValueError, match=r"unit.snapshot_steps must not exceed max_steps \(30\).*got \(10, 40\)"):
        config(tmp_path, snapshot_steps=[10, 40])


def exploding_after(step_count):
    """A loss that is noisy_mse until step_count steps were taken, then a thousand times the first step's loss."""
    steps = []

    def loss(model, batch):
        steps.append(1)
        value = noisy_mse(model, batch)
        return value * 1e6 if len(steps) > step_count else value

    return loss


def test_divergence_factor_counts_an_exploding_finite_loss_as_diverged(tmp_path):
    settings = dict(max_steps=40, log_every=5, eval_every=10, lr=1e-3, checkpoint_path=None)
    model, data = make_problem()
    plain = train(model, exploding_after(12), data, config(tmp_path, on_divergence="stop", **settings))
    assert plain.diverged_step is None and plain.steps == 40, "without a factor only a non-finite loss diverges"
    model, data = make_problem()
    evaluated_at = []

    def evaluate(model):
        evaluated_at.append(len(evaluated_at))
        return {"mse": float(len(evaluated_at))}

    result = train(
        model,
        exploding_after(12),
        data,
        config(tmp_path, on_divergence="stop", divergence_factor=100, **settings),
        evaluate=evaluate,
    )
    assert result.diverged_step == 13 and result.steps == 15
    assert "100 times the first step's" in result.stop_reason
    # The diverged weights are not measured: the final metrics are those of step 10, the last evaluation before.
    assert len(evaluated_at) == 1 and "validation_mse" not in result.history[-1]
    assert result.final_metrics == {"validation_mse": 1.0}
    # Diverged before its first evaluation (step 3, recorded at 5): measured once for its metric names, final NaN.
    model, data = make_problem()
    evaluated_at.clear()
    early = train(
        model,
        exploding_after(2),
        data,
        config(tmp_path / "early", on_divergence="stop", divergence_factor=100, **settings),
        evaluate=evaluate,
    )
    assert early.diverged_step == 3 and early.steps == 5 and len(evaluated_at) == 1
    assert early.history[-1]["validation_mse"] == 1.0 and math.isnan(early.final_metrics["validation_mse"])
    model, data = make_problem()
    with pytest.raises(NonFiniteLossError, match=r"at step 13: lower unit.lr"):
        train(model, exploding_after(12), data, config(tmp_path, divergence_factor=100, **settings))


def test_divergence_factor_reference_survives_a_resume(tmp_path):
    settings = dict(max_steps=40, log_every=5, eval_every=50, lr=1e-3, on_divergence="stop", divergence_factor=100)
    model, data = make_problem()
    loss = exploding_after(22)
    run_interrupted(model, loss, data, config(tmp_path, **settings), step=15)  # checkpoint at step 10
    assert load_checkpoint(tmp_path / "ckpt" / "unit.pt")["initial_loss"] > 0
    model, data = make_problem()
    result = train(model, exploding_after(12), data, config(tmp_path, **settings))  # resumed at 10: step 23 explodes
    assert result.diverged_step == 23


@pytest.mark.parametrize("factor", [1, 0.5, True, "10"])
def test_divergence_factor_must_exceed_one(tmp_path, factor):
    with pytest.raises(ValueError, match="unit.divergence_factor must be null or a number > 1"):
        config(tmp_path, divergence_factor=factor)


def test_snapshots_keep_the_weights_after_the_listed_steps(tmp_path):
    model, data = make_problem()
    stopped = train(model, noisy_mse, data, config(tmp_path / "b", max_steps=10, checkpoint_path=None))
    model, data = make_problem()
    with_snapshots = train(model, noisy_mse, data, config(tmp_path / "c", max_steps=20, snapshot_steps=[10, 20]))
    assert set(with_snapshots.snapshots) == {10, 20}
    for key, value in stopped.model.state_dict().items():
        assert torch.equal(with_snapshots.snapshots[10][key], value), key
