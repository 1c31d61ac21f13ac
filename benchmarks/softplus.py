"""Softplus on this CPU: `.venv/bin/python -m benchmarks.softplus [--repeats R] [--steps N]`.

Prints, side by side and interleaved (the 2 cores' speed drifts between runs, a ratio measured in one process does
not), microseconds per call of torch's nn.Softplus and the project's core.models.Softplus on a training batch's
hidden layer (128 x 256) and an evaluation's (1797 x 256), forward and forward + backward, then ms per optimiser step
of the digits' VAE (the MLP encoder and decoder of conf/base, batch 128) built with each, and the median ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from gpe_pipeline.core.models import JointAutoencoder, Softplus, build_model
from gpe_pipeline.core.step_losses import joint_step_loss


def say(text: str) -> None:
    """A line of the printed report (a benchmark prints its figures)."""
    print(text, flush=True)  # noqa: T201


def per_call_us(function, calls: int) -> float:
    """Mean microseconds of function() over `calls`, after 20 warm-up calls."""
    for _ in range(20):
        function()
    start = time.perf_counter()
    for _ in range(calls):
        function()
    return (time.perf_counter() - start) / calls * 1e6


def vae_with(activation: type[nn.Module]) -> JointAutoencoder:
    """The digits' VAE (conf/base: 16-d latent, [256, 256] softplus MLPs), every Softplus replaced by `activation`."""
    torch.manual_seed(0)
    encoder = build_model("gaussian_encoder", "mlp", data_shape=(1, 8, 8), latent_dim=16, body_options={"hidden": [256, 256]})
    decoder = build_model("decoder", "mlp", data_shape=(1, 8, 8), latent_dim=16, hidden=[256, 256])
    model = JointAutoencoder(encoder, decoder)
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if isinstance(child, (nn.Softplus, Softplus)):
                setattr(parent, name, activation())
    return model


def step_ms(model: JointAutoencoder, batch: torch.Tensor, steps: int) -> float:
    """Mean ms of one Adam step of the VAE's joint loss on `batch`."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        loss = joint_step_loss(model, (batch,), beta=0.1, mds_weight=0.0)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return per_call_us(step, steps) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    say(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads")
    say("\n| input | pass | nn.Softplus us | core.models.Softplus us | ratio |\n|---|---|---|---|---|")
    for shape in ((128, 256), (1797, 256)):
        x = torch.randn(*shape) * 4
        leaf = x.clone().requires_grad_(True)
        for name, make in (("forward", lambda m: lambda: m(x)), ("forward + backward", lambda m: lambda: m(leaf).sum().backward())):
            theirs, ours = [], []
            for _ in range(args.repeats):
                theirs.append(per_call_us(make(nn.Softplus()), 200))
                ours.append(per_call_us(make(Softplus()), 200))
            a, b = statistics.median(theirs), statistics.median(ours)
            say(f"| {shape[0]} x {shape[1]} | {name} | {a:.0f} | {b:.0f} | {a / b:.2f}x |")
    batch = (torch.rand(128, 1, 8, 8) * 255).to(torch.uint8)
    ratios, theirs, ours = [], [], []
    for _ in range(args.repeats):
        theirs.append(step_ms(vae_with(nn.Softplus), batch, args.steps))
        ours.append(step_ms(vae_with(Softplus), batch, args.steps))
        ratios.append(theirs[-1] / ours[-1])
    say(
        f"\nThe digits' VAE, one Adam step at batch 128 ({args.repeats} interleaved repeats of {args.steps} steps): "
        f"nn.Softplus {statistics.median(theirs):.2f} ms, core.models.Softplus {statistics.median(ours):.2f} ms, "
        f"median ratio {statistics.median(ratios):.2f}x (range {min(ratios):.2f}-{max(ratios):.2f}x)"
    )


if __name__ == "__main__":
    main()
