"""Conditional flow matching, the velocity network and the ODE solvers of generation."""

import math

import pytest
import torch
from torch import nn

from gpe_pipeline.core.latents import denormalise_latents
from gpe_pipeline.core.losses import cfm_loss, flow_interpolation, flow_target_velocity
from gpe_pipeline.core.models import VelocityMLP, build_model, model_from_spec
from gpe_pipeline.core.sampling import SOLVERS, integrate_flow, sample_images, sample_latents, sample_prior_images


def test_interpolation_path_and_target_velocity_by_hand():
    noise = torch.tensor([[1.0, -2.0], [0.0, 4.0]])
    target = torch.tensor([[3.0, 2.0], [-1.0, 0.0]])
    t = torch.tensor([0.25, 1.0])
    # row 0: 0.75 * (1, -2) + 0.25 * (3, 2) = (1.5, -1); row 1 at t = 1 is the target itself
    assert torch.equal(flow_interpolation(noise, target, t), torch.tensor([[1.5, -1.0], [-1.0, 0.0]]))
    assert torch.equal(flow_interpolation(noise, target, torch.zeros(2)), noise)
    assert torch.equal(flow_target_velocity(noise, target), torch.tensor([[2.0, 4.0], [-1.0, -4.0]]))


class LinearVelocity(nn.Module):
    """v(y, t) = w * y + b * t: small enough to evaluate the loss by hand."""

    def __init__(self, w: float, b: float):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))
        self.b = nn.Parameter(torch.tensor(b))

    def forward(self, y, t):
        return self.w * y + self.b * t[:, None]


def test_cfm_loss_matches_a_hand_computed_value():
    noise = torch.tensor([[1.0, -2.0], [0.0, 4.0]])
    target = torch.tensor([[3.0, 2.0], [-1.0, 0.0]])
    t = torch.tensor([0.25, 1.0])
    model = LinearVelocity(w=2.0, b=1.0)
    # y_t = [[1.5, -1], [-1, 0]]; v = 2 y_t + t = [[3.25, -1.75], [-1, 1]]; u = [[2, 4], [-1, -4]]
    # residuals [[1.25, -5.75], [0, 5]] -> squares 1.5625 + 33.0625 + 0 + 25 = 59.625, mean over 4 elements
    loss = cfm_loss(model, target, noise=noise, t=t)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(59.625 / 4)
    loss.backward()
    assert model.w.grad is not None and model.w.grad != 0


def test_cfm_loss_draws_noise_and_time_and_trains_with_gradients():
    torch.manual_seed(0)
    model = VelocityMLP(latent_dim=3, hidden=[16, 16], time_embedding_dim=8)
    loss = cfm_loss(model, torch.randn(32, 3))
    assert loss.ndim == 0 and torch.isfinite(loss) and loss > 0
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(ValueError, match="t of shape"):
        cfm_loss(model, torch.randn(4, 3), t=torch.rand(3))


def test_velocity_mlp_output_depends_on_time():
    torch.manual_seed(0)
    model = build_model("velocity", "mlp", latent_dim=4, hidden=[32, 32], time_embedding_dim=16)
    y = torch.randn(5, 4)
    early = model(y, torch.full((5,), 0.1))
    late = model(y, torch.full((5,), 0.9))
    assert early.shape == (5, 4)
    assert (early - late).abs().max() > 1e-3
    assert torch.equal(model(y, torch.tensor(0.1)), early)  # a scalar t is broadcast to every row


def test_velocity_model_rebuilds_from_its_spec():
    original = build_model("velocity", "mlp", latent_dim=3, hidden=(8,), time_embedding_dim=4, activation="relu")
    assert original.build_spec.as_dict() == {
        "role": "velocity",
        "architecture": "mlp",
        "kwargs": {"latent_dim": 3, "hidden": [8], "time_embedding_dim": 4, "activation": "relu"},
    }
    rebuilt = model_from_spec(original.build_spec.as_dict(), original.state_dict())
    y, t = torch.randn(2, 3), torch.rand(2)
    assert torch.equal(original(y, t), rebuilt(y, t))


@pytest.mark.parametrize(
    "role, architecture, kwargs, message",
    [
        ("velocity", "conv32", {"latent_dim": 2}, "unknown architecture 'conv32' for role 'velocity'"),
        ("velocity", "mlp", {}, "build_model needs latent_dim for role 'velocity'"),
        ("velocity", "mlp", {"latent_dim": 2, "time_embedding_dim": 5}, "time_embedding_dim must be an even integer"),
    ],
)
def test_bad_velocity_settings_say_what_to_change(role, architecture, kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_model(role, architecture, **kwargs)


# A linear field dy/dt = A y (a damped rotation) and a time-dependent one dy/dt = t y, with closed-form solutions.
MATRIX = torch.tensor([[-0.5, 2.0], [-2.0, -0.5]], dtype=torch.float64)
START = torch.tensor([[1.0, 0.0], [0.5, -1.5], [-2.0, 0.3]], dtype=torch.float64)


def linear_field(y, t):
    return y @ MATRIX.T


def time_dependent_field(y, t):
    return t[:, None] * y


LINEAR_EXACT = START @ torch.linalg.matrix_exp(MATRIX).T
TIME_DEPENDENT_EXACT = START * math.exp(0.5)


@pytest.mark.parametrize(
    "solver, steps, tolerance",
    [("euler", 200, 2e-2), ("heun", 50, 2e-3), ("rk4", 20, 1e-5), ("dopri5", 1, 1e-6)],
)
@pytest.mark.parametrize("field, exact", [(linear_field, LINEAR_EXACT), (time_dependent_field, TIME_DEPENDENT_EXACT)])
def test_solvers_reach_the_closed_form(solver, steps, tolerance, field, exact):
    final, nfe = integrate_flow(field, START.clone(), solver=solver, steps=steps, rtol=1e-9, atol=1e-9)
    assert (final - exact).abs().max() < tolerance
    expected_nfe = {"euler": steps, "heun": 2 * steps, "rk4": 4 * steps}
    if solver in expected_nfe:
        assert nfe == expected_nfe[solver]
    else:
        assert nfe > 0


@pytest.mark.parametrize("solver, order", [("euler", 1), ("heun", 2), ("rk4", 4)])
def test_fixed_step_solvers_converge_at_their_order(solver, order):
    coarse, _ = integrate_flow(linear_field, START.clone(), solver=solver, steps=10)
    fine, _ = integrate_flow(linear_field, START.clone(), solver=solver, steps=20)
    ratio = (coarse - LINEAR_EXACT).abs().max() / (fine - LINEAR_EXACT).abs().max()
    assert ratio == pytest.approx(2**order, rel=0.25)  # halving the step divides the error by 2^order


def test_dopri5_does_less_work_at_looser_tolerance():
    _, tight = integrate_flow(linear_field, START.clone(), solver="dopri5", rtol=1e-10, atol=1e-10)
    _, loose = integrate_flow(linear_field, START.clone(), solver="dopri5", rtol=1e-3, atol=1e-3)
    assert 0 < loose < tight


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"solver": "midpoint"}, r"unknown solver 'midpoint': choose one of \['euler', 'heun', 'rk4', 'dopri5'\]"),
        ({"steps": 0}, "steps must be an integer >= 1"),
        ({"solver": "dopri5", "rtol": 0.0}, "dopri5 needs rtol > 0"),
    ],
)
def test_bad_solver_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        integrate_flow(linear_field, START.clone(), **kwargs)


def test_sample_latents_is_batched_reproducible_and_counts_per_trajectory():
    torch.manual_seed(0)
    model = VelocityMLP(latent_dim=3, hidden=[8], time_embedding_dim=4).train()
    first, nfe = sample_latents(model, 10, 3, solver="heun", steps=4, generator=torch.Generator().manual_seed(1), batch_size=3)
    second, _ = sample_latents(model, 10, 3, solver="heun", steps=4, generator=torch.Generator().manual_seed(1), batch_size=10)
    assert first.shape == (10, 3) and first.dtype == torch.float32
    assert torch.allclose(first, second, atol=1e-6)  # the batch size does not change the samples
    assert nfe == 8  # per trajectory, not summed over the 4 batches
    assert model.training  # the caller's mode is restored
    assert set(SOLVERS) == {"euler", "heun", "rk4", "dopri5"}


def test_sample_latents_with_zero_velocity_returns_the_noise():
    latents, _ = sample_latents(lambda y, t: torch.zeros_like(y), 6, 2, steps=3, generator=torch.Generator().manual_seed(5))
    assert torch.equal(latents, torch.randn(6, 2, generator=torch.Generator().manual_seed(5)))


def test_sample_images_decodes_denormalised_latents():
    decoder = nn.Sequential(nn.Linear(2, 4), nn.Unflatten(1, (1, 2, 2)))
    mean, scale = torch.tensor([1.0, -1.0]), torch.tensor(4.0)
    images, nfe = sample_images(
        lambda y, t: torch.ones_like(y),
        decoder,
        mean,
        scale,
        5,
        solver="rk4",
        steps=2,
        generator=torch.Generator().manual_seed(2),
    )
    # v = 1 moves every latent by exactly 1 between t = 0 and 1
    latents = torch.randn(5, 2, generator=torch.Generator().manual_seed(2)) + 1.0
    with torch.no_grad():
        expected = decoder(denormalise_latents(latents, mean, scale))
    assert images.shape == (5, 1, 2, 2) and nfe == 8
    assert torch.allclose(images, expected, atol=1e-6)


def test_sample_prior_images_decodes_standard_normal_noise_without_normalisation():
    torch.manual_seed(0)
    decoder = nn.Sequential(nn.Linear(3, 4), nn.Unflatten(1, (1, 2, 2)))
    images = sample_prior_images(decoder, 7, 3, batch_size=2, generator=torch.Generator().manual_seed(4))
    noise = torch.randn(7, 3, generator=torch.Generator().manual_seed(4))  # the noise sample_latents starts from
    with torch.no_grad():
        expected = decoder(noise)
    assert images.shape == (7, 1, 2, 2)
    assert torch.allclose(images, expected, atol=1e-6)
    with pytest.raises(ValueError, match="num_samples and batch_size must be >= 1"):
        sample_prior_images(decoder, 0, 3)
