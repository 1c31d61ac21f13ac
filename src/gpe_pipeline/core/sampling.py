"""Generation (SPEC 1): integrate dy/dt = v(y, t) from t = 0 to 1 from z ~ N(0, I), then x = S(m + y / C).

Solvers: fixed-step `euler`, `heun` and `rk4`, and adaptive `dopri5`
(torchdiffeq). Every solver reports its number of function evaluations (NFE),
counted by wrapping the velocity field, so generation quality can be plotted
against the work the solver did.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from .latents import decode, denormalise_latents

VelocityField = Callable[[Tensor, Tensor], Tensor]  # v(y (B, d), t (B,)) -> (B, d)

FIXED_STEP_SOLVERS = ("euler", "heun", "rk4")
SOLVERS = (*FIXED_STEP_SOLVERS, "dopri5")


class CountingVelocity:
    """Wraps v(y, t) so every call is counted; t may be a scalar, it is broadcast to (B,)."""

    def __init__(self, velocity: VelocityField):
        self.velocity = velocity
        self.evaluations = 0

    def __call__(self, y: Tensor, t: Tensor | float) -> Tensor:
        self.evaluations += 1
        t = torch.as_tensor(t, dtype=y.dtype, device=y.device).reshape(-1).expand(y.shape[0])
        return self.velocity(y, t)


def check_solver(solver: str, steps: int, rtol: float, atol: float) -> None:
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver '{solver}': choose one of {list(SOLVERS)}")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if solver == "dopri5" and not (rtol > 0 and atol > 0):
        raise ValueError(f"dopri5 needs rtol > 0 and atol > 0, got rtol={rtol!r}, atol={atol!r}")


def euler(velocity: CountingVelocity, y: Tensor, steps: int) -> Tensor:
    """Explicit Euler from t = 0 to 1 in `steps` equal steps (1 evaluation per step)."""
    dt = 1.0 / steps
    for index in range(steps):
        y = y + dt * velocity(y, index / steps)
    return y


def heun(velocity: CountingVelocity, y: Tensor, steps: int) -> Tensor:
    """Heun's second-order method from t = 0 to 1 in `steps` equal steps (2 evaluations per step)."""
    dt = 1.0 / steps
    for index in range(steps):
        t_start, t_end = index / steps, (index + 1) / steps  # from the index, so no rounding builds up over steps
        slope_start = velocity(y, t_start)
        slope_end = velocity(y + dt * slope_start, t_end)
        y = y + 0.5 * dt * (slope_start + slope_end)
    return y


def rk4(velocity: CountingVelocity, y: Tensor, steps: int) -> Tensor:
    """Classical fourth-order Runge-Kutta from t = 0 to 1 in `steps` equal steps (4 evaluations per step)."""
    dt = 1.0 / steps
    for index in range(steps):
        t_start = index / steps
        t_middle, t_end = t_start + 0.5 * dt, (index + 1) / steps
        k1 = velocity(y, t_start)
        k2 = velocity(y + 0.5 * dt * k1, t_middle)
        k3 = velocity(y + 0.5 * dt * k2, t_middle)
        k4 = velocity(y + dt * k3, t_end)
        y = y + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    return y


def dopri5(velocity: CountingVelocity, y: Tensor, rtol: float, atol: float) -> Tensor:
    """Adaptive Dormand-Prince 5(4) from t = 0 to 1 (torchdiffeq), to relative/absolute tolerances rtol/atol."""
    from torchdiffeq import odeint  # imported here: only the adaptive solver needs the package

    times = torch.tensor([0.0, 1.0], dtype=y.dtype, device=y.device)
    return odeint(lambda t, state: velocity(state, t), y, times, rtol=rtol, atol=atol, method="dopri5")[-1]


def integrate_flow(
    velocity: VelocityField,
    noise: Tensor,
    solver: str = "heun",
    steps: int = 50,
    rtol: float = 1e-5,
    atol: float = 1e-5,
) -> tuple[Tensor, int]:
    """Integrate dy/dt = v(y, t) from y(0) = noise at t = 0 to t = 1.

    noise: (B, d). steps: fixed-step solvers only; rtol/atol: dopri5 only.
    Returns y(1) (B, d) in the noise's dtype and the number of velocity evaluations.
    """
    check_solver(solver, steps, rtol, atol)
    counted = CountingVelocity(velocity)
    if solver == "euler":
        final = euler(counted, noise, steps)
    elif solver == "heun":
        final = heun(counted, noise, steps)
    elif solver == "rk4":
        final = rk4(counted, noise, steps)
    else:
        final = dopri5(counted, noise, rtol, atol)
    return final, counted.evaluations


def _device_of(model: nn.Module | VelocityField) -> torch.device:
    parameter = next(model.parameters(), None) if isinstance(model, nn.Module) else None
    return parameter.device if parameter is not None else torch.device("cpu")


@torch.no_grad()
def sample_latents(
    velocity: nn.Module | VelocityField,
    num_samples: int,
    latent_dim: int,
    solver: str = "heun",
    steps: int = 50,
    generator: torch.Generator | None = None,
    batch_size: int = 1024,
    rtol: float = 1e-5,
    atol: float = 1e-5,
) -> tuple[Tensor, float]:
    """Normalised latents y(1) from z ~ N(0, I_d), integrated in batches without gradients.

    generator: a CPU torch.Generator for reproducible noise. Returns y (num_samples,
    latent_dim) float32 on the CPU and the NFE per trajectory (mean over batches;
    exact for the fixed-step solvers, where every batch does the same work).
    """
    check_solver(solver, steps, rtol, atol)
    if num_samples < 1 or batch_size < 1:
        raise ValueError(f"num_samples and batch_size must be >= 1, got {num_samples} and {batch_size}")
    device = _device_of(velocity)
    was_training = isinstance(velocity, nn.Module) and velocity.training
    if isinstance(velocity, nn.Module):
        velocity.eval()
    # All the noise at once on the CPU: the samples do not depend on the batch size or the device.
    noise = torch.randn(num_samples, latent_dim, generator=generator)
    chunks, evaluations = [], []
    for start in range(0, num_samples, batch_size):
        batch = noise[start : start + batch_size].to(device)
        final, nfe = integrate_flow(velocity, batch, solver=solver, steps=steps, rtol=rtol, atol=atol)
        chunks.append(final.float().cpu())
        evaluations.append(nfe)
    if was_training:
        velocity.train()
    return torch.cat(chunks), sum(evaluations) / len(evaluations)


@torch.no_grad()
def sample_images(
    velocity: nn.Module | VelocityField,
    decoder: nn.Module,
    mean: Tensor,
    scale: Tensor,
    num_samples: int,
    batch_size: int = 1024,
    **solver_options: Any,
) -> tuple[Tensor, float]:
    """Generated data x = S(m + y / C) for y from sample_latents.

    mean m: (d,), scale C: 0-dim, the latent normalisation of latents.latent_scale.
    solver_options: solver, steps, generator, rtol, atol as in sample_latents.
    Returns images (num_samples, *data_shape) float32 on the CPU and the NFE per trajectory.
    """
    latents, nfe = sample_latents(velocity, num_samples, mean.shape[-1], batch_size=batch_size, **solver_options)
    images = decode(decoder, denormalise_latents(latents, mean, scale), batch_size, device=str(_device_of(decoder)))
    return images, nfe


@torch.no_grad()
def sample_prior_images(
    decoder: nn.Module, num_samples: int, latent_dim: int, batch_size: int = 1024, generator: torch.Generator | None = None
) -> Tensor:
    """x = S(z) for z ~ N(0, I_d) in the decoder's own latent space: no flow and no latent normalisation.

    A VAE's generator without a latent model (the paper's Fig. 11 baseline line). generator: a CPU
    torch.Generator; it draws the same noise as sample_latents with the same seed. Returns (num_samples, ...) on the CPU.
    """
    if num_samples < 1 or batch_size < 1:
        raise ValueError(f"num_samples and batch_size must be >= 1, got {num_samples} and {batch_size}")
    noise = torch.randn(num_samples, latent_dim, generator=generator)
    return decode(decoder, noise, batch_size, device=str(_device_of(decoder)))
