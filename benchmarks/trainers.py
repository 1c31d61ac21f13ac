"""The trainers under test at the paper's settings, and the two ways of running them: the project's `train` and a bare loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.timing import StepClock, time_steps
from gpe_pipeline.core.models import build_model
from gpe_pipeline.core.step_losses import decoder_step_loss, encoder_step_loss, flow_step_loss
from gpe_pipeline.core.training import (
    BatchSampler,
    TrainConfig,
    allow_tf32,
    autocast_context,
    checkpoint_state,
    fingerprint_parts,
    rng_state,
    save_checkpoint,
    train,
)
from gpe_pipeline.tracking import MlflowMetricsLogger

# The step losses the pipelines train with (GME without augmentation for the encoder).
encoder_loss = partial(encoder_step_loss, loss_name="gme", augment={})

BATCH = 100
LR = 1e-4
BETAS = (0.5, 0.999)
LOG_EVERY = 25
CHECKPOINT_EVERY = 50
# The flow's steps are ~30x cheaper than the conv nets' and noisier: longer windows and more repeats steady its median,
# and its logging and checkpoint intervals stretch with the window, so every window holds the same calls (2 logs, 1 save).
FLOW_STEP_SCALE = 5
FLOW_REPEAT_SCALE = 3
# The paper's settings (Table 2): name, image channels, latent size d, and the encoder/decoder architectures timed
# there: the light conv32 at both, and at MNIST also the paper's own networks (paper_mnist: a 0.32 M encoder, a 0.83 M
# decoder with 6x its FLOPs), whose decoder/encoder ratio is the one Table 2 measures.
PAPER_ARCHITECTURES = (("MNIST", 1, 30, ("conv32", "paper_mnist")), ("CIFAR-10", 3, 100, ("conv32",)))


@dataclass
class Trainer:
    """One trainer: a model builder, its loss on a batch, and its in-memory training tensors."""

    dataset: str
    name: str
    architecture: str  # the timed model's architecture: conv32, paper_mnist, or the flow's mlp
    latent_dim: int
    build: Callable[[], nn.Module]
    loss_fn: Callable[[nn.Module, tuple[Tensor, ...]], Tensor]
    data: list[Tensor]
    step_scale: int = 1  # times the section's timed steps
    repeat_scale: int = 1  # times the section's repeats

    @property
    def log_every(self) -> int:
        """MLflow calls twice per timed window: every 25 steps for the conv nets, every 125 for the flow."""
        return LOG_EVERY * self.step_scale

    @property
    def checkpoint_every(self) -> int:
        """One checkpoint per timed window: every 50 steps for the conv nets, every 250 for the flow."""
        return CHECKPOINT_EVERY * self.step_scale

    @property
    def model(self) -> str:
        """What is timed, as reports name it: conv32 d=30, velocity mlp d=30."""
        return f"{'velocity ' if self.name == 'flow' else ''}{self.architecture} d={self.latent_dim}"

    @property
    def key(self) -> str:
        """dataset_trainer, with the architecture appended when it is not conv32 or the flow's (mnist_encoder_paper_mnist)."""
        suffix = "" if self.architecture == "conv32" or self.name == "flow" else f"_{self.architecture}"
        return f"{self.dataset}_{self.name}{suffix}".lower().replace("-", "").replace(" ", "_")

    @property
    def label(self) -> str:
        """How reports name the trainer: MNIST encoder (conv32 d=30)."""
        return f"{self.dataset} {self.name} ({self.model})"


def seeded(role: str, architecture: str, **kwargs) -> Callable[[], nn.Module]:
    """A builder giving the same initial weights on every call."""

    def build() -> nn.Module:
        torch.manual_seed(0)
        return build_model(role, architecture, **kwargs)

    return build


class EncodeThenDecode(nn.Module):
    """A decoder fed by a frozen encoder that runs (eval mode, no grad) on the images at every step."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.encoder = encoder.requires_grad_(False)
        self.decoder = decoder
        self.train()

    def train(self, mode: bool = True) -> EncodeThenDecode:
        super().train(mode)
        self.encoder.eval()
        return self

    def forward(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            latents = self.encoder(x)
        return self.decoder(latents)


def encode_then_decode(encoder: Callable[[], nn.Module], decoder: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    """A builder of EncodeThenDecode from the two models' builders."""
    return lambda: EncodeThenDecode(encoder(), decoder())


def synthetic(examples: int, channels: int, latent_dim: int) -> tuple[Tensor, Tensor]:
    """Images uniform in [-1, 1] (N, C, 32, 32) and standard normal cached latents (N, d)."""
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(examples, channels, 32, 32, generator=generator) * 2 - 1
    return images, torch.randn(examples, latent_dim, generator=generator)


def paper_trainers(examples: int) -> list[Trainer]:
    """Encoder (GME) and decoder (MSE on cached latents) of each architecture of PAPER_ARCHITECTURES, and the flow (CFM)."""
    trainers = []
    for dataset, channels, d, architectures in PAPER_ARCHITECTURES:
        images, latents = synthetic(examples, channels, d)
        shape = dict(data_shape=[channels, 32, 32], latent_dim=d)
        for architecture in architectures:
            trainers += [
                Trainer(dataset, "encoder", architecture, d, seeded("encoder", architecture, **shape), encoder_loss, [images]),
                Trainer(
                    dataset,
                    "decoder",
                    architecture,
                    d,
                    seeded("decoder", architecture, **shape),
                    decoder_step_loss,
                    [latents, images],
                ),
            ]
        trainers.append(
            Trainer(
                dataset,
                "flow",
                "mlp",
                d,
                seeded("velocity", "mlp", latent_dim=d),
                flow_step_loss,
                [latents],
                step_scale=FLOW_STEP_SCALE,
                repeat_scale=FLOW_REPEAT_SCALE,
            )
        )
    return trainers


def reencoding_trainers(examples: int) -> list[Trainer]:
    """The conv32 decoder trained through a frozen conv32 encoder re-run on the images each step, at both paper settings."""
    trainers = []
    for dataset, channels, d, _ in PAPER_ARCHITECTURES:
        images, _ = synthetic(examples, channels, d)
        shape = dict(data_shape=[channels, 32, 32], latent_dim=d)
        build = encode_then_decode(seeded("encoder", "conv32", **shape), seeded("decoder", "conv32", **shape))
        # The decoder's own step loss on (images, images): the model encodes its first input, then decodes.
        trainers.append(Trainer(dataset, "decoder + encoder forward", "conv32", d, build, decoder_step_loss, [images, images]))
    return trainers


def mirrored_device_settings(model: nn.Module, device: torch.device) -> tuple[Callable, nn.Module]:
    """What `train` does by default on this device (bf16 autocast, TF32, torch.compile on CUDA; nothing on CPU)."""
    autocast = partial(autocast_context, device, "auto")
    if device.type != "cuda":
        return autocast, model
    allow_tf32()
    return autocast, torch.compile(model)


def bare_ms(trainer: Trainer, device: torch.device, warmup: int, steps: int) -> float:
    """Milliseconds per step of a bare loop: random batch by indexing, forward, loss, zero_grad, backward, Adam step."""
    model = trainer.build().to(device)
    data = [t.to(device) for t in trainer.data]
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, betas=BETAS)
    autocast, step_model = mirrored_device_settings(model, device)

    def step() -> None:
        indices = torch.randint(len(data[0]), (BATCH,), device=device)
        with autocast():
            loss = trainer.loss_fn(step_model, tuple(t[indices] for t in data))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return time_steps(step, device, warmup, steps)


def train_config(trainer: Trainer, max_steps: int, checkpoint_path: Path) -> TrainConfig:
    """The project's trainer at batch 100, Adam lr 1e-4 betas (0.5, 0.999), logging and checkpointing at the trainer's intervals."""
    return TrainConfig(
        max_steps=max_steps,
        batch_size=BATCH,
        lr=LR,
        betas=BETAS,
        log_every=trainer.log_every,
        eval_every=max_steps,
        checkpoint_every=trainer.checkpoint_every,
        checkpoint_path=str(checkpoint_path),
        name=trainer.key,
    )


def ours_ms(trainer: Trainer, device: torch.device, warmup: int, steps: int, workdir: Path) -> float:
    """Milliseconds per step of the project's `train` (MLflow metrics, checkpoints), from step-end marks after warm-up."""
    clock = StepClock(device, warmup, warmup + steps)
    config = train_config(trainer, warmup + steps, workdir / f"{trainer.key}.pt")
    train(trainer.build(), trainer.loss_fn, trainer.data, config, log_metrics=MlflowMetricsLogger(trainer.key), on_step_end=clock)
    return clock.ms_per_step()


def overhead_ms(trainer: Trainer, device: torch.device, calls: int, workdir: Path) -> tuple[float, float]:
    """Milliseconds per call of the two periodic costs of `train`: one checkpoint save and one MLflow log_metrics call."""
    model = trainer.build().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, betas=BETAS)
    loss = trainer.loss_fn(model, tuple(t[:BATCH].to(device) for t in trainer.data))
    loss.backward()
    optimizer.step()  # Adam's moment buffers exist now, as in every checkpoint the trainer writes
    sampler = BatchSampler(len(trainer.data[0]), BATCH, seed=0)
    history = [{"step": 25.0 * i, "train_loss": 1.0, "steps_per_sec": 10.0, "elapsed_s": 1.0} for i in range(4)]
    fingerprint = fingerprint_parts(train_config(trainer, 50, workdir / "unused.pt"), model, trainer.loss_fn, trainer.data)
    state = checkpoint_state(fingerprint, 50, model, None, optimizer, sampler, [rng_state(device)], history, elapsed=1.0)
    save_ms = time_steps(lambda: save_checkpoint(workdir / f"overhead_{trainer.key}.pt", state), device, 1, calls)
    log = MlflowMetricsLogger(f"overhead_{trainer.key}")
    record = {"train_loss": float(loss.detach()), "steps_per_sec": 10.0, "elapsed_s": 1.0}
    log_ms = time_steps(lambda: log(record, 25), device, 1, calls)
    return save_ms, log_ms


def step_flops(trainer: Trainer, device: torch.device) -> int:
    """FLOPs of one training step's forward and backward (FlopCounterMode; the Adam update is not counted)."""
    model = trainer.build().to(device)
    with FlopCounterMode(display=False) as counter:
        trainer.loss_fn(model, tuple(t[:BATCH].to(device) for t in trainer.data)).backward()
    return counter.get_total_flops()
