"""The trainers under test at the paper's settings, and the ways of running them: the project's `train` and a bare loop.

Imports only torch and the project's core at module level: the GPU check uses it on a bare machine without MLflow.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.timing import StepClock, WindowDone, time_steps
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
# The precision modes the GPU check times, as TrainConfig settings.
MODES = {
    "fp32": dict(precision="fp32", compile="off"),
    "bf16": dict(precision="bf16", compile="off"),
    "bf16+compile": dict(precision="bf16", compile="on"),
}


@dataclass(frozen=True)
class PaperSetting:
    """One dataset of the paper's Table 2: image channels and side, latent size d, the paper's batch and network."""

    dataset: str  # as Table 2 names it
    channels: int
    side: int
    latent_dim: int
    batch: int
    network: str  # the paper's own encoder and decoder architecture for it (SPEC 6)

    @property
    def shapes(self) -> dict[str, object]:
        """build_model's data_shape and latent_dim at this setting."""
        return dict(data_shape=[self.channels, self.side, self.side], latent_dim=self.latent_dim)


PAPER_SETTINGS = {
    setting.dataset: setting
    for setting in (
        PaperSetting("MNIST", 1, 32, 30, 100, "paper_mnist"),
        PaperSetting("CIFAR-10", 3, 32, 100, 100, "paper_cifar10"),
        PaperSetting("CelebA", 3, 64, 100, 100, "paper_celeba"),
        PaperSetting("CelebA-HQ", 3, 256, 100, 50, "paper_celebahq"),
    )
}
# The architectures the CPU suite (benchmarks.run) times at batch 100, by dataset: the light conv32 at both, and at
# MNIST also the paper's own networks (paper_mnist: a 0.32 M encoder, a 0.83 M decoder with 6x its FLOPs), whose
# decoder/encoder ratio is the one Table 2 measures.
PAPER_ARCHITECTURES = {"MNIST": ("conv32", "paper_mnist"), "CIFAR-10": ("conv32",)}


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
    batch: int = BATCH
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

    def first_batch(self, device: torch.device) -> tuple[Tensor, ...]:
        """The first `batch` rows of every training tensor, on the device."""
        return tuple(t[: self.batch].to(device) for t in self.data)


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


def synthetic(examples: int, channels: int, latent_dim: int, side: int = 32, uint8: bool = False) -> tuple[Tensor, Tensor]:
    """Images (N, C, side, side), uniform in [-1, 1] or uint8 in 0..255, and standard normal cached latents (N, d)."""
    generator = torch.Generator().manual_seed(0)
    shape = (examples, channels, side, side)
    if uint8:
        images = torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)
    else:
        images = torch.rand(shape, generator=generator) * 2 - 1
    return images, torch.randn(examples, latent_dim, generator=generator)


def encoder_and_decoder(setting: PaperSetting, architecture: str, images: Tensor, latents: Tensor, batch: int) -> list[Trainer]:
    """The encoder (GME on the images) and the decoder (MSE on the cached latents) of one architecture."""
    common = dict(dataset=setting.dataset, architecture=architecture, latent_dim=setting.latent_dim, batch=batch)
    roles = (("encoder", encoder_loss, [images]), ("decoder", decoder_step_loss, [latents, images]))
    return [
        Trainer(name=role, build=seeded(role, architecture, **setting.shapes), loss_fn=loss, data=data, **common)
        for role, loss, data in roles
    ]


def paper_trainers(examples: int) -> list[Trainer]:
    """Encoder, decoder and flow (CFM) at each dataset of PAPER_ARCHITECTURES: 32 x 32 images in [-1, 1], batch 100."""
    trainers = []
    for dataset, architectures in PAPER_ARCHITECTURES.items():
        setting = PAPER_SETTINGS[dataset]
        d = setting.latent_dim
        images, latents = synthetic(examples, setting.channels, d)
        for architecture in architectures:
            trainers += encoder_and_decoder(setting, architecture, images, latents, BATCH)
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


def paper_network_trainers(examples: int, networks: list[str]) -> list[Trainer]:
    """Encoder and decoder of each of the paper's own networks named, at its image size and batch, on uint8 images."""
    trainers = []
    for setting in PAPER_SETTINGS.values():
        if setting.network in networks:
            images, latents = synthetic(examples, setting.channels, setting.latent_dim, setting.side, uint8=True)
            trainers += encoder_and_decoder(setting, setting.network, images, latents, setting.batch)
    return trainers


def reencoding_trainers(examples: int) -> list[Trainer]:
    """The conv32 decoder trained through a frozen conv32 encoder re-run on the images each step, at both CPU datasets."""
    trainers = []
    for dataset in PAPER_ARCHITECTURES:
        setting = PAPER_SETTINGS[dataset]
        images, _ = synthetic(examples, setting.channels, setting.latent_dim)
        build = encode_then_decode(seeded("encoder", "conv32", **setting.shapes), seeded("decoder", "conv32", **setting.shapes))
        # The decoder's own step loss on (images, images): the model encodes its first input, then decodes.
        name, d = "decoder + encoder forward", setting.latent_dim
        trainers.append(Trainer(dataset, name, "conv32", d, build, decoder_step_loss, [images, images]))
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
        indices = torch.randint(len(data[0]), (trainer.batch,), device=device)
        with autocast():
            loss = trainer.loss_fn(step_model, tuple(t[indices] for t in data))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return time_steps(step, device, warmup, steps)


def train_config(trainer: Trainer, max_steps: int, checkpoint_path: Path | None = None, **settings) -> TrainConfig:
    """The project's trainer at the trainer's batch, Adam lr 1e-4 betas (0.5, 0.999), logging and checkpointing at the
    trainer's intervals; `settings` override any of these (and set the other TrainConfig fields)."""
    defaults = dict(
        max_steps=max_steps,
        batch_size=trainer.batch,
        lr=LR,
        betas=BETAS,
        log_every=trainer.log_every,
        eval_every=max_steps,
        checkpoint_every=trainer.checkpoint_every,
        checkpoint_path=None if checkpoint_path is None else str(checkpoint_path),
        name=trainer.key,
    )
    return TrainConfig(**(defaults | settings))


def timed_train(trainer: Trainer, config: TrainConfig, clock: StepClock, log_metrics=None) -> nn.Module:
    """The project's `train` on the trainer's data with `clock` at every step end (it may stop the loop); the model."""
    model = trainer.build()
    with contextlib.suppress(WindowDone):
        train(model, trainer.loss_fn, trainer.data, config, log_metrics=log_metrics, on_step_end=clock)
    return model


def ours_ms(trainer: Trainer, device: torch.device, warmup: int, steps: int, workdir: Path) -> float:
    """Milliseconds per step of the project's `train` (MLflow metrics, checkpoints), from step-end marks after warm-up."""
    from gpe_pipeline.tracking import MlflowMetricsLogger  # here: the GPU check imports this module without MLflow

    clock = StepClock(device, warmup, warmup + steps)
    config = train_config(trainer, warmup + steps, workdir / f"{trainer.key}.pt")
    timed_train(trainer, config, clock, log_metrics=MlflowMetricsLogger(trainer.key))
    return clock.ms_per_step()


def overhead_ms(trainer: Trainer, device: torch.device, calls: int, workdir: Path) -> tuple[float, float]:
    """Milliseconds per call of the two periodic costs of `train`: one checkpoint save and one MLflow log_metrics call."""
    from gpe_pipeline.tracking import MlflowMetricsLogger  # here: the GPU check imports this module without MLflow

    model = trainer.build().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, betas=BETAS)
    loss = trainer.loss_fn(model, trainer.first_batch(device))
    loss.backward()
    optimizer.step()  # Adam's moment buffers exist now, as in every checkpoint the trainer writes
    sampler = BatchSampler(len(trainer.data[0]), trainer.batch, seed=0)
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
        trainer.loss_fn(model, trainer.first_batch(device)).backward()
    return counter.get_total_flops()
