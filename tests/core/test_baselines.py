"""The VAE family: the Gaussian encoder, the joint trainer through the one training loop, the AE's determinism."""

from functools import partial

import pytest
import torch

from gpe_pipeline.core.losses import reconstruction_loss
from gpe_pipeline.core.models import JointAutoencoder, build_model, model_from_spec
from gpe_pipeline.core.step_losses import joint_step_loss
from gpe_pipeline.core.training import TrainConfig, train


def joint_model(stochastic: bool, latent_dim: int = 3, seed: int = 0) -> JointAutoencoder:
    torch.manual_seed(seed)
    shape = dict(data_shape=[1, 4, 4], latent_dim=latent_dim)
    encoder = build_model("gaussian_encoder", "mlp", stochastic=stochastic, body_options={"hidden": [16]}, **shape)
    decoder = build_model("decoder", "mlp", hidden=[16], **shape)
    return JointAutoencoder(encoder, decoder)


@pytest.fixture
def images():
    """Images driven by two hidden factors, so a 3-dimensional latent can reconstruct them."""
    generator = torch.Generator().manual_seed(0)
    factors, mixing = torch.randn(32, 2, generator=generator), torch.randn(2, 16, generator=generator)
    return torch.tanh(factors @ mixing).reshape(32, 1, 4, 4)


def test_gaussian_encoder_has_mean_and_logvar_heads_on_a_hidden_vector_of_ten_d():
    encoder = joint_model(stochastic=True).encoder
    assert encoder.body(torch.zeros(2, 1, 4, 4)).shape == (2, 30)  # hidden vector of size 10 d
    mean, logvar = encoder.distribution(torch.zeros(2, 1, 4, 4))
    assert mean.shape == logvar.shape == (2, 3)
    assert torch.equal(encoder(torch.zeros(2, 1, 4, 4)), mean), "the deterministic encoder is the mean"
    assert joint_model(stochastic=False).encoder.logvar is None


def test_gaussian_encoder_rebuilds_from_its_spec():
    encoder = build_model("gaussian_encoder", "conv32", data_shape=[1, 32, 32], latent_dim=2, body_options={"width": 4})
    rebuilt = model_from_spec(encoder.build_spec.as_dict(), encoder.state_dict()).eval()
    x = torch.rand(3, 1, 32, 32)
    assert torch.equal(rebuilt(x), encoder.eval()(x))


def test_the_ae_loss_without_regulariser_is_the_deterministic_reconstruction_loss(images):
    model = joint_model(stochastic=False)
    first = joint_step_loss(model, (images,), beta=0.0, mds_weight=0.0)
    second = joint_step_loss(model, (images,), beta=0.0, mds_weight=0.0)
    assert torch.equal(first["loss"], second["loss"]), "no noise in the AE family"
    expected = reconstruction_loss(model.decoder(model.encoder(images)), images)
    assert first["loss"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_the_vae_samples_its_latents(images):
    model = joint_model(stochastic=True)
    first = joint_step_loss(model, (images,), beta=0.1, mds_weight=1.0)
    second = joint_step_loss(model, (images,), beta=0.1, mds_weight=1.0)
    assert first["reconstruction"].item() != second["reconstruction"].item()
    assert first["kl"].item() > 0 and first["mds"].item() > 0


@pytest.mark.parametrize("stochastic, beta, mds_weight", [(True, 0.1, 0.0), (False, 0.0, 1.0)])
def test_the_joint_trainer_lowers_its_loss_through_the_training_loop(tmp_path, images, stochastic, beta, mds_weight):
    model = joint_model(stochastic)
    settings = dict(max_steps=150, batch_size=16, lr=1e-2, log_every=25, eval_every=150, checkpoint_every=150, name="joint")
    result = train(model, partial(joint_step_loss, beta=beta, mds_weight=mds_weight), [images], TrainConfig(**settings))
    history = result.history
    assert history[-1]["train_loss"] < 0.7 * history[0]["train_loss"]
    assert {"train_reconstruction", "train_kl", "train_mds"} <= set(history[0])
