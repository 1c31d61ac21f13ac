"""Models built from a stage's parameters: initial weights depend on training.seed only."""

import torch

from gpe_pipeline.params import model_from_params


def weights(params):
    model = model_from_params("encoder", "train_encoder", params, data_shape=[1, 8, 8], latent_dim=4)
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_initial_weights_come_from_the_training_seed_not_the_global_rng():
    params = {"architecture": "mlp", "model_options": {"mlp": {"hidden": [16]}}, "training": {"seed": 3}}
    torch.manual_seed(0)
    first = weights(params)
    torch.rand(1000)  # another node used the global RNG first
    state = torch.get_rng_state()
    assert torch.equal(weights(params), first)
    assert torch.equal(torch.get_rng_state(), state), "building a model leaves the caller's RNG stream alone"
    assert not torch.equal(weights({**params, "training": {"seed": 4}}), first)
