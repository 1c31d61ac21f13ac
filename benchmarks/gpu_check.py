"""The GPU check: `python -m benchmarks.gpu_check [--budget-s 270] [--out PATH]`, about five minutes on one GPU.

It needs only torch and the project's plain-PyTorch core (no Kedro, no MLflow), so it runs on a bare GPU machine with
`PYTHONPATH=src`. It writes a markdown report to benchmarks/results/gpu-check-<GPU>-<date>.md (and prints it):

1. Pairwise distances under mixed precision: the GME (and MDS) loss of an exact isometry of a 100 x 3072 batch under
   bf16 autocast with TF32 allowed (what `train` sets on CUDA) against IEEE float32; they must agree within 1e-6.
2. The paper's networks (SPEC 6) at the paper's batch, encoder (GME) and decoder (MSE on cached latents) steps through
   the project's own `train()`, in float32, bf16 autocast, and bf16 + torch.compile: ms per step beside the paper's
   Table 2 (V100), achieved TFLOP/s, CUDA peak memory, compile time.
3. Where two GPUs exist: one 2-process NCCL DDP step equals the single-process step.

Everything runs against a deadline (--budget-s): what does not fit is listed as not run, and the report is rewritten
after every measurement, so a run stopped from outside still leaves its table.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import shutil
import sys
import time
import traceback
from pathlib import Path

import torch

from benchmarks.timing import PAPER_TABLE2, StepClock, emit, machine, results_path, table, write_atomically
from benchmarks.trainers import (
    MODES,
    PAPER_SETTINGS,
    Trainer,
    encoder_loss,
    paper_network_trainers,
    step_flops,
    timed_train,
    train_config,
)
from gpe_pipeline.core.losses import full_float32, gme_loss, log_cost, mds1_loss, mds2_loss
from gpe_pipeline.core.metrics import gme_heldout
from gpe_pipeline.core.models import build_model, count_parameters
from gpe_pipeline.core.training import TrainConfig, allow_tf32, train

ISOMETRY_TOLERANCE = 1e-6


# --- 1. distances under mixed precision -------------------------------------------------------------------------------


def isometric_batch(device: torch.device, size: int = 100, data_dim: int = 3072, latent_dim: int = 100):
    """Images in [-1, 1] on a latent_dim-dimensional affine subspace, and their exact isometric coordinates."""
    generator = torch.Generator().manual_seed(0)
    latents = 0.3 * torch.randn(size, latent_dim, generator=generator, dtype=torch.float64)
    basis, _ = torch.linalg.qr(torch.randn(data_dim, latent_dim, generator=generator, dtype=torch.float64))
    data = latents @ basis.T + (torch.rand(data_dim, generator=generator, dtype=torch.float64) * 2 - 1)
    return latents.float().to(device), data.float().to(device)


def gram_gme(latents: torch.Tensor, data: torch.Tensor) -> torch.Tensor:
    """The GME through an uncentred Gram product left to autocast: what the loss computed before distances were pinned."""

    def squared(x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        return ((x * x).sum(1, keepdim=True) + (x * x).sum(1)[None] - 2.0 * (x @ x.T)).clamp_min(0)

    return (log_cost(squared(latents)) - log_cost(squared(data))).square().mean()


def section_isometry(device: torch.device) -> tuple[str, bool]:
    """1. Losses of an exact isometry in IEEE float32 and under bf16 autocast with TF32 on."""
    latents, data = isometric_batch(device)
    rows, passed = [], True
    # MDS2 compares |T x_i - T x_j|^2 / d with |x_i - x_j|^2 / D: its zero is the isometry scaled by sqrt(d / D).
    mds2_latents = latents * (latents.shape[1] / data.shape[1]) ** 0.5
    checks = {
        "gme_loss": (gme_loss, latents),
        "mds1_loss": (mds1_loss, latents),
        "mds2_loss (latents scaled by sqrt(d/D))": (mds2_loss, mds2_latents),
        "gme_heldout (metric)": (lambda a, b: torch.tensor(gme_heldout(a, b)), latents),
        "uncentred Gram product left to autocast (not used; the error the fix removes)": (gram_gme, latents),
    }
    for name, (loss, embedded) in checks.items():
        with full_float32():
            reference = float(loss(embedded, data))
        allow_tf32()  # the state `train` leaves the process in on CUDA: the losses must opt out of it themselves
        with torch.autocast(device.type, dtype=torch.bfloat16):
            mixed = float(loss(embedded, data))
        ok = abs(mixed - reference) < ISOMETRY_TOLERANCE and mixed < ISOMETRY_TOLERANCE
        if name.startswith("uncentred"):
            verdict = "(for contrast)"
        else:
            passed &= ok
            verdict = "yes" if ok else "**NO**"
        rows.append([name, f"{reference:.2e}", f"{mixed:.2e}", f"{abs(mixed - reference):.2e}", verdict])
    header = ["loss of an exact isometry (100 x 3072 -> 100)", "IEEE float32", "bf16 autocast + TF32", "difference"]
    header.append("within 1e-6")
    note = (
        "The data lie on a 100-dimensional affine subspace of R^3072 (values in about [-1.2, 1.2]), the latents are "
        "their exact coordinates, so every loss is 0 in exact arithmetic. The bf16 column runs under "
        f"`torch.autocast('{device.type}', dtype=torch.bfloat16)` after `allow_tf32()`, the state `train` leaves on CUDA."
    )
    return "## 1. Pairwise distances under mixed precision\n\n" + table(header, rows) + "\n\n" + note, passed


# --- 2. the paper's networks: step time, memory, compile ----------------------------------------------------------------


def time_case(trainer: Trainer, mode: str, device: torch.device, settings: argparse.Namespace) -> dict[str, object]:
    """ms/step of `train()` on the trainer in one mode, with CUDA peak memory and the first (compiling) step's seconds."""
    torch._dynamo.reset()  # each model compiles afresh, and earlier graphs do not count against the cache limit
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    max_steps = settings.warmup + settings.steps
    # stop: the window's end ends `train` too, before it moves the model to the CPU in eval mode for "loss after"
    clock = StepClock(device, settings.warmup, max_steps, seconds=settings.seconds_per_run, stop=True)
    name = f"{trainer.architecture}_{trainer.name}_{mode}"
    intervals = dict(log_every=max_steps, checkpoint_every=max_steps, min_batch_size=2)
    config = train_config(trainer, max_steps, device=str(device), name=name, **intervals, **MODES[mode])
    model = timed_train(trainer, config, clock)
    with torch.no_grad():
        loss = float(trainer.loss_fn(model, trainer.first_batch(device)))
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return {"ms": clock.ms_per_step(), "steps": clock.steps, "first_s": clock.first_step_s, "peak_gib": peak, "loss": loss}


def section_steps(device: torch.device, settings: argparse.Namespace, deadline: float, report) -> tuple[str, bool]:
    """2. Every paper network's encoder and decoder step in every mode, until the deadline."""
    trainers = paper_network_trainers(settings.examples, settings.architectures)
    todo = [(trainer, mode) for mode in settings.modes for trainer in trainers]
    results: dict[tuple[str, str, str], dict[str, object]] = {}
    flops: dict[tuple[str, str], int] = {}
    all_finite = True

    def render() -> str:
        rows = []
        for trainer in trainers:
            key = (trainer.architecture, trainer.name)
            paper = PAPER_TABLE2[trainer.dataset][0 if trainer.name == "encoder" else 1]
            for mode in settings.modes:
                result = results.get((*key, mode))
                if result is None:
                    cells = ["not run (time budget)"] + [""] * 5
                elif "error" in result:
                    cells = [f"failed: {result['error']}"] + [""] * 5
                else:
                    tflops = flops[key] / (result["ms"] / 1000) / 1e12 if key in flops else float("nan")
                    cells = [
                        f"{result['ms']:.2f} ({result['steps']} steps)",
                        f"{tflops:.1f}",
                        f"{result['peak_gib']:.2f}",
                        f"{result['first_s']:.1f}",
                        f"{result['loss']:.4g}",
                        f"{paper * 1000:.0f}",
                    ]
                params = f"{count_parameters(trainer.build()) / 1e6:.2f} M" if mode == settings.modes[0] else ""
                gflop = f"{flops[key] / 1e9:.1f}" if key in flops and mode == settings.modes[0] else ""
                rows.append([trainer.architecture, trainer.name, trainer.batch, params, gflop, mode, *cells])
        header = ["network", "trainer", "batch", "weights", "GFLOP/step", "mode", "ms/step", "TFLOP/s"]
        header += ["CUDA peak GiB", "first step s (compile)", "loss after", "paper V100 ms/step (Table 2)"]
        ratios = []
        for setting in PAPER_SETTINGS.values():
            for mode in settings.modes:
                encoder, decoder = (results.get((setting.network, name, mode)) for name in ("encoder", "decoder"))
                if encoder and decoder and "ms" in encoder and "ms" in decoder:
                    paper_encoder, paper_decoder = PAPER_TABLE2[setting.dataset]
                    cells = [f"{decoder['ms'] / encoder['ms']:.1f}", f"{paper_decoder / paper_encoder:.1f}"]
                    ratios.append([setting.dataset, mode, *cells])
        note = (
            f"Each cell is the project's `train()` (Adam lr 1e-4, betas (0.5, 0.999)) on {settings.examples} synthetic "
            "uint8 images (and standard normal cached latents for the decoder) held on the device, mapped to [-1, 1] per "
            "batch; the encoder minimises the GME loss, the decoder the MSE on cached latents. Timed: steps after "
            f"{settings.warmup} warm-up steps, up to {settings.steps} steps or {settings.seconds_per_run:g} s, CUDA "
            "synchronised at both ends only. 'first step s' is the wall time of step 1 (torch.compile's compilation "
            "happens there). TFLOP/s: FlopCounterMode's forward + backward FLOPs of one step over the measured time. "
            "'loss after': the step loss on the first batch after the timed steps (a NaN would stop `train` anyway). "
            "The paper's Table 2 was measured on a V100 in its own code; only the decoder/encoder ratio below "
            "compares across machines."
        )
        ratio_table = table(["data", "mode", "ours decoder/encoder", "paper decoder/encoder"], ratios) if ratios else ""
        return (
            "## 2. The paper's networks: step time, memory, compile\n\n"
            + table(header, rows)
            + "\n\n"
            + note
            + ("\n\n" + ratio_table if ratio_table else "")
        )

    for trainer, mode in todo:
        key = (trainer.architecture, trainer.name)
        label = f"{trainer.architecture} {trainer.name} {mode}"
        needed = settings.compile_reserve_s if "compile" in mode else settings.seconds_per_run + 10
        if time.perf_counter() + needed > deadline:
            emit(f"  skipped {label}: the time budget is spent")
            continue
        try:
            if key not in flops:
                flops[key] = step_flops(trainer, device)
            results[(*key, mode)] = result = time_case(trainer, mode, device, settings)
            all_finite &= math.isfinite(result["loss"])
            emit(f"  {label}: {result['ms']:.2f} ms/step, peak {result['peak_gib']:.2f} GiB")
        except Exception as err:  # one failing configuration must not cost the rest of the table
            message = f"{type(err).__name__}: {str(err).splitlines()[0][:160] if str(err) else ''}"
            results[(*key, mode)] = {"error": message}
            all_finite = False
            emit(f"  {label} FAILED: {message}")
            traceback.print_exc()
        report(render())
    return render(), all_finite


# --- 3. DDP ----------------------------------------------------------------------------------------------------------------


def ddp_matches_single_process(
    architecture: str, data_shape: list[int], latent_dim: int, batch: int, backend: str, device: str = "auto"
) -> float:
    """Relative difference between 2 processes and 1 in how far 4 GME steps lower the loss (0: identical training).

    The loss decrease, not the weights: GME ignores the latent layer's bias, whose gradient is rounding noise that
    Adam's normalisation turns into +-lr either way. A step applied twice, or on half the pairs, is off by ~100%.
    """
    torch.manual_seed(0)
    encoder = build_model("encoder", architecture, data_shape=data_shape, latent_dim=latent_dim)
    initial = {k: v.clone() for k, v in encoder.state_dict().items()}
    images = torch.randint(0, 256, (4 * batch, *data_shape), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    settings = dict(max_steps=4, batch_size=batch, lr=1e-3, log_every=1, eval_every=4, checkpoint_every=4, precision="fp32")
    settings["device"] = device
    losses = []
    for name, world_size in (("single", 1), ("ddp", 2)):
        encoder.load_state_dict(initial)
        config = TrainConfig(name=name, world_size=world_size, backend=backend, compile="off", **settings)
        history = train(encoder, encoder_loss, [images], config).history
        losses.append([record["train_loss"] for record in history])
    single, spawned = losses
    return max(abs((b - spawned[0]) - (a - single[0])) / abs(a - single[0]) for a, b in zip(single[1:], spawned[1:], strict=True))


def section_ddp() -> tuple[str, bool]:
    if torch.cuda.device_count() < 2:
        return f"## 3. DDP\n\nNot run: {torch.cuda.device_count()} GPU(s) visible, the check needs 2.", True
    difference = ddp_matches_single_process("paper_mnist", [1, 32, 32], 30, 100, "nccl")
    ok = difference < 0.05
    text = (
        "## 3. DDP\n\nFour GME steps of `paper_mnist` at batch 100 (lr 1e-3) on 2 NCCL processes (50 rows each, batch "
        "norm synchronised) against 1 process: the loss decrease differs by "
        f"{difference:.2%} ({'within' if ok else '**outside**'} 5%)."
    )
    return text, ok


# --- the report -------------------------------------------------------------------------------------------------------------


def header_lines(device: torch.device, settings: argparse.Namespace) -> str:
    info = machine()
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        info["GPU memory"] = f"{properties.total_memory / 2**30:.0f} GiB"
        info["multiprocessors"] = str(properties.multi_processor_count)
        info["CUDA (torch build)"] = str(torch.version.cuda)
    info["command"] = "python -m benchmarks.gpu_check " + " ".join(sys.argv[1:])
    rows = [[key, value] for key, value in info.items()]
    return (
        f"# GPU check, {datetime.datetime.now().isoformat(timespec='minutes')}\n\n"
        + table(["", ""], rows)
        + f"\n\nDevice: {device}; budget {settings.budget_s:g} s."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-s", type=float, default=270, help="stop starting new measurements after this many seconds")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu for a smoke run")
    parser.add_argument("--architectures", nargs="+", default=[setting.network for setting in PAPER_SETTINGS.values()])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--steps", type=int, default=300, help="timed steps at most per measurement")
    parser.add_argument("--seconds-per-run", type=float, default=4.0, help="timed seconds at most per measurement")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--examples", type=int, default=1000, help="synthetic training examples held on the device")
    parser.add_argument("--compile-reserve-s", type=float, default=45, help="time a compiled measurement may need")
    parser.add_argument("--out", type=Path, default=None)
    settings = parser.parse_args(argv)
    if settings.warmup < 1:
        parser.error("--warmup must be at least 1: the timed window starts at the end of a warm-up step")
    started = time.perf_counter()
    deadline = started + settings.budget_s
    if settings.device.startswith("cuda") and not torch.cuda.is_available():
        emit("no CUDA device is visible: this check needs a GPU (use --device cpu for a smoke run)")
        return 2
    device = torch.device(settings.device)
    out = settings.out or results_path(torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu", "gpu-check-")
    sections: dict[str, str] = {"header": header_lines(device, settings)}

    def report(text: str | None = None, key: str = "steps") -> None:
        if text is not None:
            sections[key] = text
        write_atomically(out, "\n\n".join(sections.values()) + "\n")
        copy = Path(os.environ.get("OUT", out.parent)) / out.name  # OUT: the device machine's folder that comes back
        if copy.resolve() != out.resolve():
            shutil.copy(out, copy)

    emit(f"GPU check on {device}, report: {out}")
    sections["isometry"], isometry_ok = section_isometry(device)
    report()
    emit(sections["isometry"])
    steps_text, steps_ok = section_steps(device, settings, deadline, report)
    sections["steps"] = steps_text
    ddp_text, ddp_ok = section_ddp() if device.type == "cuda" else ("## 3. DDP\n\nNot run on the CPU.", True)
    sections["ddp"] = ddp_text
    verdict = "passed" if isometry_ok and steps_ok and ddp_ok else "**FAILED**"
    sections["verdict"] = (
        f"## Verdict: {verdict}\n\nIsometry within 1e-6: {'yes' if isometry_ok else 'NO'}; every measured step finite "
        f"and error-free: {'yes' if steps_ok else 'NO'}; DDP: {'matches or not run' if ddp_ok else 'MISMATCH'}. "
        f"Wall time {time.perf_counter() - started:.0f} s."
    )
    report()
    emit("\n\n".join(list(sections.values())[2:]))
    return 0 if verdict == "passed" else 1


if __name__ == "__main__":
    sys.exit(main())
