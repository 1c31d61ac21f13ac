"""Bad parameters fail in one line that names the key, before any stage runs."""

import pytest

from gpe_pipeline.validation import ParameterError, sections_read, validate_parameters, validate_run

from .conftest import environment_config, with_value

# The parameter sections the six stages read: the checks are keyed by them, not by node names.
STAGES = {"ingest", "train_encoder", "cache_latents", "train_decoder", "train_flow", "evaluate"}


def test_the_checks_follow_the_sections_each_namespace_reads():
    from gpe_pipeline.pipelines.compare.pipeline import create_pipeline as compare
    from gpe_pipeline.pipelines.exp_encoder_stability.pipeline import create_pipeline as stability
    from gpe_pipeline.pipelines.gpe_full.pipeline import create_pipeline as gpe_full

    assert sections_read(gpe_full()) == {"": STAGES}
    read = sections_read(compare())
    assert read[""] == {"ingest", "evaluate"} and read["compare.vae"] == STAGES - {"ingest"}
    # An encoder-only study reads train_decoder too: a baseline's encoder trains jointly with the decoder it names.
    assert sections_read(stability())["exp_encoder_stability.seed_0.gme_lr_low"] == {"train_encoder", "train_decoder"}


def test_base_parameters_are_valid(params):
    validate_parameters(params, STAGES)


@pytest.mark.parametrize(
    "dotted, value, message",
    [
        ("ingest.dataset", "imagenet", "unknown dataset 'imagenet': set ingest.dataset"),
        ("train_encoder.architecture", "vit", "train_encoder: unknown architecture 'vit'"),
        ("train_decoder.architecture", "unet", "train_decoder: unknown architecture 'unet'"),
        ("train_encoder.training.batch_size", 1, "train_encoder.training.batch_size must be an integer >= 2 for a pairwise loss"),
        ("train_encoder.latent_dim", 0, "train_encoder.latent_dim must be an integer >= 1"),
        ("train_encoder.training.lr", 0, "train_encoder.training.lr must be a positive number"),
        ("train_decoder.training.lr", -0.1, "train_decoder.training.lr must be a positive number"),
        ("train_encoder.loss", "mse", "unknown train_encoder.loss 'mse'"),
        ("cache_latents.batch_size", 0, "cache_latents.batch_size must be an integer >= 1"),
        ("ingest.dataset", "image_folder", "ingest.path must name the image folder"),
        ("ingest.image_dtype", "float16", "ingest.image_dtype must be one of"),
        ("ingest.max_trian", 10, r"unknown key\(s\) \['max_trian'\] in ingest: the known keys are"),
        ("train_encoder.augment.crop_scale", 1.5, "train_encoder.augment takes hflip"),
        ("train_flow.training.lr", -1, "train_flow.training.lr must be a positive number"),
        ("train_flow.architecture", "unet", "train_flow: unknown architecture 'unet' for role 'velocity'"),
        ("evaluate.sampling.solver", "euler_maruyama", "evaluate.sampling: unknown solver 'euler_maruyama'"),
        ("evaluate.sampling.steps", 0, "evaluate.sampling: steps must be an integer >= 1"),
        ("evaluate.max_points", 1, "evaluate.max_points must be an integer >= 2"),
        ("evaluate.geometry_points", 1, "evaluate.geometry_points must be an integer >= 2"),
        ("evaluate.kid.subset_size", 1, "evaluate.kid.subset_size must be an integer >= 2"),
        ("evaluate.kid.subsets", 0, "evaluate.kid.subsets must be an integer >= 1"),
        ("evaluate.bootstrap.resamples", 0.5, "evaluate.bootstrap.resamples must be an integer >= 1"),
        ("evaluate.bootstrap.max_features", -1, "evaluate.bootstrap.max_features must be an integer >= 0"),
        ("evaluate.bootstrap.confidence", 1.0, r"evaluate.bootstrap.confidence must be a number in \(0, 1\)"),
        ("evaluate.batch_size", 0, "evaluate.batch_size must be an integer >= 1"),
        ("evaluate.device", "tpu", "evaluate.device must be auto, cpu or cuda"),
        ("cache_latents.device", "gpu", "cache_latents.device must be auto, cpu or cuda"),
        ("train_flow.training.device", "gpu", "train_flow.training.device must be auto, cpu or cuda"),
        ("evaluate.classifier.training.batch_size", 0, "evaluate.classifier.training.batch_size must be an integer >= 1"),
        ("ingest.validation_fraction", 0, r"ingest.validation_fraction must be a number in \(0, 1\)"),
        ("ingest.validation_fraction", 1.0, r"ingest.validation_fraction must be a number in \(0, 1\)"),
        ("ingest.validation_fraction", "10%", r"ingest.validation_fraction must be a number in \(0, 1\)"),
        ("ingest.max_validation", 0, "ingest.max_validation must be null or an integer >= 1"),
        ("ingest.heldout_fraction", 1.0, r"ingest.heldout_fraction must be a number in \(0, 1\)"),
    ],
)
def test_bad_values_are_named(params, dotted, value, message):
    with pytest.raises(ParameterError, match=message) as info:
        validate_parameters(with_value(params, dotted, value), STAGES)
    assert "\n" not in str(info.value), "the error is one line"


@pytest.mark.parametrize(
    "dotted, value, message",
    [
        ("train_decoder.training.lr", -1, "train_decoder.training.lr must be a positive number"),
        ("train_decoder.training.batch_size", 1, "train_decoder.training.batch_size must be an integer >= 2"),
    ],
)
def test_a_baseline_is_checked_against_the_decoder_settings_it_trains_with(params, dotted, value, message):
    vae_mds = with_value(with_value(params, "train_encoder.method", "vae"), "train_encoder.mds_weight", 1.0)
    with pytest.raises(ParameterError, match=message):
        validate_parameters(with_value(vae_mds, dotted, value), {"ingest", "train_encoder"})
    validate_parameters(with_value(vae_mds, "train_encoder.training.batch_size", 1), {"ingest", "train_encoder"})


def test_a_tanh_decoder_is_refused_for_unbounded_gmm_data(params):
    gmm = with_value(params, "ingest.dataset", "gmm")
    with pytest.raises(ParameterError) as info:
        validate_parameters(gmm, STAGES)
    assert str(info.value) == (
        "train_decoder.model_options.mlp.output_activation is tanh, whose outputs lie in [-1, 1], but dataset 'gmm' "
        "takes values in (-inf, inf): set train_decoder.model_options.mlp.output_activation to none"
    )
    validate_parameters(with_value(gmm, "train_decoder.model_options.mlp.output_activation", "none"), STAGES)
    validate_parameters(with_value(params, "train_decoder.model_options.mlp.output_activation", "none"), STAGES)
    validate_parameters(gmm, STAGES - {"train_decoder"})  # only the decoder's stage cares


def test_architecture_that_does_not_fit_the_data_shape(params):
    changed = with_value(params, "train_encoder.architecture", "conv32")
    with pytest.raises(ParameterError, match=r"needs images of shape \(C, 32, 32\).*set ingest.image_size to 32"):
        validate_parameters(changed, STAGES)


def test_unknown_model_option_is_named(params):
    changed = with_value(params, "train_encoder.model_options.mlp.hiden", [8])
    with pytest.raises(ParameterError, match=r"train_encoder.model_options.mlp.hiden is not an option of architecture 'mlp'"):
        validate_parameters(changed, STAGES)


def test_unknown_training_key_is_named(params):
    with pytest.raises(ParameterError, match=r"unknown key\(s\) \['learning_rate'\] in train_decoder.training"):
        validate_parameters(with_value(params, "train_decoder.training.learning_rate", 0.1), STAGES)


def test_distributed_settings_are_checked(params):
    two = with_value(params, "train_encoder.training.world_size", 2)
    validate_parameters(two, STAGES)
    with pytest.raises(ParameterError, match="train_encoder.training.batch_size must be divisible by world_size"):
        validate_parameters(
            with_value(with_value(params, "train_encoder.training.world_size", 3), "train_encoder.training.batch_size", 128),
            STAGES,
        )
    validate_parameters(with_value(two, "train_encoder.loss", "mds2"), STAGES)  # every pairwise loss gathers across ranks


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"world_size": 2, "nodes": 2}, "train_encoder.training.rendezvous must be HOST:PORT of this machine when nodes > 1"),
        ({"world_size": 2, "nodes": 2, "rendezvous": "head-host"}, "train_encoder.training.rendezvous must be null or HOST:PORT"),
        (
            {"world_size": 2, "nodes": 2, "rendezvous": "head:99999"},
            "train_encoder.training.rendezvous must be null or HOST:PORT",
        ),
        (
            {"world_size": 4, "nodes": 3, "rendezvous": "head:29400"},
            "train_encoder.training.nodes must divide world_size \\(4\\)",
        ),
        (
            {"world_size": 1, "nodes": 2, "rendezvous": "head:29400"},
            "train_encoder.training.nodes must be an integer in 1..world",
        ),
        ({"max_restarts": -1}, "train_encoder.training.max_restarts must be an integer >= 0"),
        ({"rendezvous_timeout": 2.5}, "train_encoder.training.rendezvous_timeout must be a whole number of seconds >= 1"),
    ],
)
def test_settings_for_many_machines_are_checked(params, settings, message):
    changed = params
    for key, value in settings.items():
        changed = with_value(changed, f"train_encoder.training.{key}", value)
    with pytest.raises(ParameterError, match=message):
        validate_parameters(changed, STAGES)


def test_two_machines_of_two_processes_are_valid(params):
    changed = params
    for key, value in {"world_size": 4, "nodes": 2, "rendezvous": "[::1]:29400", "max_restarts": 3}.items():
        changed = with_value(changed, f"train_encoder.training.{key}", value)
    validate_parameters(changed, STAGES)


def test_only_the_stages_being_run_are_checked(params):
    broken = with_value(params, "train_encoder.training.lr", -1)
    validate_parameters(broken, {"cache_latents", "train_decoder"})
    with pytest.raises(ParameterError):
        validate_parameters(broken, {"train_encoder"})


@pytest.mark.parametrize("env", ["mnist", "cifar10", "celeba", "celebahq", "gmm"])
def test_paper_environments_have_valid_parameters_and_catalogs(env):
    from kedro.io import DataCatalog

    validate_parameters(environment_config(env), STAGES)
    catalog = DataCatalog.from_config(environment_config(env, "catalog"))
    assert catalog.get("train_data") is not None and catalog.get("encoder") is not None


def test_more_nccl_processes_than_gpus_are_refused_before_training(params, monkeypatch):
    monkeypatch.setattr("torch.cuda.device_count", lambda: 1)
    two = with_value(with_value(params, "train_decoder.training.world_size", 2), "train_decoder.training.backend", "nccl")
    with pytest.raises(ParameterError, match="train_decoder.training.world_size is 2, but NCCL needs one GPU per process and 1"):
        validate_parameters(two, STAGES)
    validate_parameters(with_value(two, "train_decoder.training.backend", "gloo"), STAGES)
    # Over two machines each runs one process, which one GPU serves; three processes each is too many.
    two_machines = with_value(
        with_value(two, "train_decoder.training.nodes", 2), "train_decoder.training.rendezvous", "head:29400"
    )
    validate_parameters(two_machines, STAGES)
    six = with_value(two_machines, "train_decoder.training.world_size", 6)
    with pytest.raises(ParameterError, match=r"world_size is 6 over 2 machines \(3 each\), but NCCL needs one GPU per process"):
        validate_parameters(with_value(six, "train_decoder.training.batch_size", 120), STAGES)


@pytest.mark.parametrize("env", ["mnist", "cifar10", "celeba", "celebahq"])
def test_the_paper_report_and_compare_are_valid_in_every_paper_environment(env):
    from kedro.framework.project import configure_project

    configure_project("gpe_pipeline")
    from gpe_pipeline.pipelines.compare.pipeline import create_pipeline as compare
    from gpe_pipeline.pipelines.paper_report.pipeline import create_pipeline as paper_report

    for pipeline in (compare(), paper_report()):
        validate_run(environment_config(env), pipeline)


def test_an_experiments_variants_are_checked_against_its_own_dataset(params):
    from kedro.framework.project import configure_project

    configure_project("gpe_pipeline")
    from gpe_pipeline.pipelines.exp_gmm_latents.pipeline import create_pipeline

    images = with_value(params, "ingest.image_size", 32)  # the shared digits at 32 x 32 suit conv32; E1's gmm does not
    conv = with_value(images, "exp_gmm_latents.shared.train_encoder.architecture", "conv32")
    validate_run(images, create_pipeline())
    with pytest.raises(ParameterError, match=r"conv32.*the data has shape \(500,\)"):
        validate_run(conv, create_pipeline())
