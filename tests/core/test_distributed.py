"""DDP on CPU (gloo, 2 spawned processes): one step equals a single process on the concatenated batch."""

import copy
from functools import partial

import pytest
import torch

from gpe_pipeline.core.distributed import distributed_pairwise_loss
from gpe_pipeline.core.losses import PAIRWISE_RESIDUALS, gme_residual, mds1_loss, mds2_loss, mds_regulariser, reconstruction_loss
from gpe_pipeline.core.models import build_model
from gpe_pipeline.core.training import BatchSampler, NonFiniteLossError, TrainConfig, load_checkpoint, train


def encoder_loss(model, batch):
    return distributed_pairwise_loss(gme_residual, model(batch[0]), batch[0])


def decoder_loss(model, batch):
    return reconstruction_loss(model(batch[0]), batch[1])


def one_step(model, loss, data, world_size, evaluate=None, **overrides):
    # Processes on the CPU with gloo, also on a machine with a GPU (NCCL would need one GPU per process).
    settings = dict(max_steps=1, batch_size=16, lr=1e-2, log_every=1, eval_every=1, checkpoint_every=1, world_size=world_size)
    settings.update(device="cpu", backend="gloo")
    settings.update(overrides)
    return train(model, loss, data, TrainConfig(name="ddp", **settings), evaluate=evaluate)


def assert_same_parameters(a, b, skip=()):
    for (key, value), other in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        if key not in skip:
            assert torch.allclose(value, other, atol=1e-5, rtol=0), key


@pytest.fixture(scope="module")
def images():
    return torch.rand(40, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1


def test_distributed_gme_step_equals_single_process_step(images):
    torch.manual_seed(0)
    encoder = build_model("encoder", "mlp", data_shape=[1, 8, 8], latent_dim=4, hidden=[32])
    initial = {k: v.clone() for k, v in encoder.state_dict().items()}
    single = copy.deepcopy(one_step(encoder, encoder_loss, [images], world_size=1).model)  # train() trains in place
    encoder.load_state_dict(initial)
    spawned = one_step(encoder, encoder_loss, [images], world_size=2)
    assert not torch.equal(spawned.model.net[1].weight, initial["net.1.weight"]), "the step changed the weights"
    # GME ignores the latent layer's bias: its gradient is rounding noise, which Adam's normalisation turns into +-lr.
    assert_same_parameters(single, spawned.model, skip={"net.3.bias"})
    assert spawned.history[0]["train_loss"] == pytest.approx(single_loss(initial, images), rel=1e-5)


def single_loss(state, images):
    model = build_model("encoder", "mlp", data_shape=[1, 8, 8], latent_dim=4, hidden=[32])
    model.load_state_dict(state)
    indices = BatchSampler(len(images), 16, 0).next_indices()
    with torch.no_grad():
        return float(encoder_loss(model, (images[indices],)))


@pytest.mark.parametrize("name", ["mds1", "mds2", "r_mds"])
def test_every_pairwise_loss_pairs_rows_with_the_gathered_batch(images, name):
    torch.manual_seed(0)
    encoder = build_model("encoder", "mlp", data_shape=[1, 8, 8], latent_dim=4, hidden=[32])
    initial = {k: v.clone() for k, v in encoder.state_dict().items()}
    loss = partial(pairwise_step_loss, residual=PAIRWISE_RESIDUALS[name])
    single = copy.deepcopy(one_step(encoder, loss, [images], world_size=1).model)
    encoder.load_state_dict(initial)
    spawned = one_step(encoder, loss, [images], world_size=2)
    assert_same_parameters(single, spawned.model, skip={"net.3.bias"})  # every loss here ignores the latent bias
    with torch.no_grad():
        x = images[BatchSampler(len(images), 16, 0).next_indices()]
        encoder.load_state_dict(initial)
        expected = {"mds1": mds1_loss, "mds2": mds2_loss, "r_mds": mds_regulariser}[name](encoder(x), x)
    assert spawned.history[0]["train_loss"] == pytest.approx(float(expected), rel=1e-5)


def pairwise_step_loss(model, batch, residual):
    return distributed_pairwise_loss(residual, model(batch[0]), batch[0])


def test_distributed_decoder_step_equals_single_process_step(images):
    torch.manual_seed(1)
    decoder = build_model("decoder", "mlp", data_shape=[1, 8, 8], latent_dim=4, hidden=[32])
    latents = torch.randn(40, 4, generator=torch.Generator().manual_seed(2))
    initial = {k: v.clone() for k, v in decoder.state_dict().items()}
    single = copy.deepcopy(one_step(decoder, decoder_loss, [latents, images], world_size=1).model)
    decoder.load_state_dict(initial)
    spawned = one_step(decoder, decoder_loss, [latents, images], world_size=2).model
    assert_same_parameters(single, spawned)


def test_early_stop_and_logging_happen_once_across_ranks(images, tmp_path):
    torch.manual_seed(0)
    encoder = build_model("encoder", "mlp", data_shape=[1, 8, 8], latent_dim=4, hidden=[16])
    result = one_step(
        encoder,
        encoder_loss,
        [images],
        world_size=2,
        max_steps=50,
        eval_every=5,
        log_every=5,
        target=1e9,
        target_metric="always",
        evaluate=always,
        checkpoint_path=str(tmp_path / "ckpt.pt"),
    )
    assert result.steps == 5, "every rank stops at the first evaluation that meets the target"
    assert result.stop_reason.startswith("validation_always")


def always(model):
    return {"always": 0.0}


def test_batch_must_split_evenly_across_processes():
    with pytest.raises(ValueError, match="divisible by world_size"):
        TrainConfig(max_steps=1, batch_size=15, lr=1e-3, world_size=2, name="ddp")


class Interrupt(Exception):
    pass


class NoisyLossThatCrashes:
    """MSE on inputs with noise from the global RNG (each rank draws its own); raises at call `crash_at` (None: never).

    A class rather than a partial: the crash step is not part of the loss's description, so the interrupted run and
    its re-run share one checkpoint fingerprint.
    """

    def __init__(self, crash_at=None):
        self.crash_at, self.calls = crash_at, 0

    def __call__(self, model, batch):
        self.calls += 1
        if self.calls == self.crash_at:
            raise Interrupt(f"crash at step {self.calls}")
        latents, images = batch
        noisy = latents + 0.1 * torch.randn_like(latents)
        return reconstruction_loss(model(noisy), images)


def test_an_interrupted_two_process_run_resumes_exactly(images, tmp_path):
    latents = torch.randn(40, 4, generator=torch.Generator().manual_seed(2))

    def run(folder, crash_at=None, max_steps=12):
        torch.manual_seed(1)
        decoder = build_model("decoder", "mlp", data_shape=[1, 8, 8], latent_dim=4, hidden=[16])
        settings = dict(max_steps=max_steps, log_every=4, eval_every=4, checkpoint_every=4, device="cpu", backend="gloo")
        return one_step(
            decoder,
            NoisyLossThatCrashes(crash_at),
            [latents, images],
            world_size=2,
            checkpoint_path=str(tmp_path / folder / "decoder.pt"),
            **settings,
        )

    reference = run("reference")
    with pytest.raises(Exception, match="crash at step 10"):  # both ranks crash after the checkpoint of step 8
        run("interrupted", crash_at=10)
    checkpoint = load_checkpoint(tmp_path / "interrupted" / "decoder.pt")
    assert checkpoint["step"] == 8 and len(checkpoint["rng"]) == 2
    assert not torch.equal(checkpoint["rng"][0]["torch"], checkpoint["rng"][1]["torch"]), "each rank's own generator"
    resumed = run("interrupted")
    assert resumed.history[-1]["step"] == 12 and resumed.history[0]["step"] == 4  # the history of steps 4 and 8 came back
    for key, value in reference.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


class LossThatBecomesNaN:
    """MSE, then NaN from call `nan_at` on (on every rank alike): a user error, not a lost process."""

    def __init__(self, nan_at):
        self.nan_at, self.calls = nan_at, 0

    def __call__(self, model, batch):
        self.calls += 1
        loss = decoder_loss(model, batch)
        return loss * float("nan") if self.calls >= self.nan_at else loss


def test_a_user_error_in_the_processes_is_raised_as_it_is_and_not_retried(images, capfd):
    latents = torch.randn(40, 4, generator=torch.Generator().manual_seed(2))
    decoder = build_model("decoder", "mlp", data_shape=[1, 8, 8], latent_dim=4, hidden=[16])
    with pytest.raises(NonFiniteLossError, match="ddp: the loss became nan at step 3"):
        one_step(decoder, LossThatBecomesNaN(nan_at=3), [latents, images], world_size=2, max_steps=5, max_restarts=2)
    output = capfd.readouterr()  # the launched processes write to the same descriptors
    assert "ddp step 2/5" in output.out, "rank 0's progress lines are captured here"
    assert "restarted the processes" not in output.out + output.err


def decoder_validation(model, latents, images):
    return {"mse": float(reconstruction_loss(model(latents), images))}


def test_a_finished_two_process_training_is_reused_alike_by_the_parent_and_by_every_rank(images, tmp_path, monkeypatch):
    from gpe_pipeline.core import distributed, training

    latents = torch.randn(40, 4, generator=torch.Generator().manual_seed(2))
    evaluate = partial(decoder_validation, latents=latents[:8], images=images[:8])
    path = tmp_path / "decoder.pt"
    settings = dict(max_steps=8, log_every=4, eval_every=4, checkpoint_every=4, checkpoint_path=str(path), world_size=2)
    config = TrainConfig(
        name="ddp", batch_size=16, lr=1e-2, device="cpu", backend="gloo", target_metric="mse", snapshot_at=[1e6], **settings
    )

    def decoder():
        torch.manual_seed(1)
        return build_model("decoder", "mlp", data_shape=[1, 8, 8], latent_dim=4, hidden=[16])

    first = train(decoder(), NoisyLossThatCrashes(), [latents, images], config, evaluate=evaluate)
    assert first.level_snapshots[1e6]["step"] == 4, "rank 0's level snapshots come back from the processes"
    stored = path.read_bytes()

    def no_processes(*args, **kwargs):
        raise AssertionError("a reused training starts no processes")

    monkeypatch.setattr(training, "_train_spawned", no_processes)
    reused = train(decoder(), NoisyLossThatCrashes(), [latents, images], config, evaluate=evaluate)
    # Inside the processes (after a restart by the elastic agent, say) only rank 0 has evaluate, part of the
    # fingerprint: every rank must follow its decision. A loss that crashes at its first call: no rank takes a step.
    plan = distributed.Launch(name="ddp", world_size=2, backend="gloo")
    ranks = distributed.launch(
        plan, training._train_in_process_group, decoder(), NoisyLossThatCrashes(1), [latents, images], config, evaluate=evaluate
    )
    assert path.read_bytes() == stored, "nothing trained, so nothing was written"
    assert reused.history == ranks["history"] == first.history and reused.steps == ranks["steps"] == 8
    assert reused.level_snapshots[1e6]["step"] == ranks["level_snapshots"][1e6]["step"] == 4
    for key, value in first.model.state_dict().items():
        assert torch.equal(value, reused.model.state_dict()[key]) and torch.equal(value, ranks["model"][key]), key
