"""The parameter layer (merge, checkpoints, refusals, methods defined once), the parameters a run logs, and the
comparison's helpers."""

import pandas as pd
import pytest

from gpe_pipeline.params import ParameterError, architectures_by_path, used_parameters
from gpe_pipeline.pipelines.compare.pipeline import create_pipeline
from gpe_pipeline.readings import reconstruction_curve, stage_cost, stage_costs
from gpe_pipeline.validation import validate_run
from gpe_pipeline.variants import merge_overrides, method_label, run_parameters, variant_names

from .conftest import with_value


def test_overrides_deep_merge_into_a_copy():
    base = {"training": {"lr": 1e-3, "max_steps": 10}, "beta": 0.1}
    merged = merge_overrides(base, {"training": {"lr": 0.5}}, "compare.x.train_encoder")
    assert merged == {"training": {"lr": 0.5, "max_steps": 10}, "beta": 0.1}
    assert base["training"]["lr"] == 1e-3, "the shared section is not changed"


def test_an_override_of_a_missing_key_names_it():
    with pytest.raises(ParameterError, match=r"compare.x.train_encoder.training.learning_rate overrides a key"):
        merge_overrides({"training": {"lr": 1}}, {"training": {"learning_rate": 2}}, "compare.x.train_encoder")


def test_each_variant_checkpoints_in_its_own_folder(params):
    sections = run_parameters(params, {"compare.vae"})["compare.vae"]
    assert sections["train_encoder"]["method"] == "vae" and sections["train_encoder"]["beta"] == 0.1
    assert sections["train_encoder"]["training"]["checkpoint_path"] == "data/06_models/checkpoints/compare.vae/encoder.pt"
    assert sections["train_flow"]["training"]["checkpoint_path"] == "data/06_models/checkpoints/compare.vae/flow.pt"
    assert params["train_encoder"]["training"]["checkpoint_path"] == "data/06_models/checkpoints/encoder.pt"


def test_method_labels():
    assert [method_label(s) for s in ({"method": "gpe", "loss": "gme"}, {"method": "gpe", "loss": "mds2"})] == [
        "gpe",
        "gpe (mds2)",
    ]
    assert [method_label({"method": m, "mds_weight": w}) for m, w in (("vae", 0), ("vae", 1.0), ("ae", 2.0))] == [
        "vae",
        "vae+mds",
        "ae+mds",
    ]


def test_the_compare_parameters_are_valid(params):
    validate_run(params, create_pipeline())


@pytest.mark.parametrize(
    "dotted, value, message",
    [
        ("compare.vea", {}, "compare.vea is not a variant of the compare pipeline"),
        ("compare.vae.train_encoder.beta", -1.0, "train_encoder.beta must be a number >= 0"),
        ("compare.ae_mds.train_encoder.mds_weight", -1.0, "train_encoder.mds_weight must be a number >= 0"),
        ("compare.ae.train_encoder.beta", 0.5, "train_encoder.beta must be 0 for method ae"),
        ("compare.vae.train_encoder.method", "gan", "unknown train_encoder.method 'gan'"),
        ("compare.vae.train_flow", {"hidden": 3}, "compare.vae.train_flow.hidden overrides a key the stage does not have"),
        ("compare.vae.ingest", {"dataset": "gmm"}, "compare.vae.ingest is not a stage section a variant can override"),
    ],
)
def test_bad_variant_parameters_name_the_key(params, dotted, value, message):
    with pytest.raises(ParameterError, match=message):
        validate_run(
            with_value(params, dotted, value)
            if dotted != "compare.vea"
            else {**params, "compare": {**params["compare"], "vea": {}}},
            create_pipeline(),
        )


def test_used_parameters_leave_out_other_architectures_and_datasets():
    encoder = {"architecture": "mlp", "model_options": {"mlp": {"hidden": [8]}, "conv32": {"width": 4}}, "latent_dim": 2}
    assert used_parameters("train_encoder", encoder)["model_options"] == {"mlp": {"hidden": [8]}}
    assert used_parameters("train_encoder", encoder, {"train_encoder": {"conv32"}})["model_options"].keys() == {"mlp", "conv32"}
    evaluate = {"classifier": {"architecture": "mlp", "model_options": {"mlp": {}, "conv32": {}}}, "seed": 0}
    assert used_parameters("evaluate", evaluate)["classifier"]["model_options"] == {"mlp": {}}
    ingest = {"dataset": "digits", "gmm": {"dim": 500}, "path": None, "root": "data/01_raw", "seed": 0, "image_size": None}
    assert used_parameters("ingest", ingest) == {"dataset": "digits", "seed": 0, "image_size": None}
    assert "gmm" in used_parameters("ingest", {**ingest, "dataset": "gmm"})
    assert architectures_by_path(
        {"train_encoder": {"architecture": "conv32"}, "evaluate": {"classifier": {"architecture": "mlp"}}}
    ) == {
        "train_encoder": {"conv32"},
        "evaluate.classifier": {"mlp"},
    }


def test_a_decoder_trained_after_its_encoder_is_shifted_by_the_encoder_time():
    encoder = pd.DataFrame({"step": [10, 20], "train_elapsed_s": [1.0, 2.5]})
    decoder = pd.DataFrame({"step": [5, 10], "validation_mse": [0.4, 0.2], "train_elapsed_s": [0.5, 1.0]})
    curve = reconstruction_curve({"encoder_history": encoder, "decoder_history": decoder})
    assert curve["seconds"].tolist() == [3.0, 3.5] and curve["value"].tolist() == [0.4, 0.2]
    joint = decoder.assign(trained_jointly=True)
    assert reconstruction_curve({"encoder_history": encoder, "decoder_history": joint})["seconds"].tolist() == [0.5, 1.0]
    assert stage_cost(encoder) == (20, 2.5) and stage_cost(pd.DataFrame()) == (0, 0.0)
    flow = pd.DataFrame({"step": [30], "train_elapsed_s": [4.0]})
    assert stage_costs({"encoder_history": encoder, "decoder_history": decoder, "flow_history": flow}) == (
        (20, 2.5),
        (10, 1.0),
        (30, 4.0),
    )
    assert stage_costs({"encoder_history": encoder, "decoder_history": joint, "flow_history": flow})[1] == (0, 0.0)


def test_a_method_is_defined_once_and_every_group_that_runs_it_gets_the_same_sections(params):
    namespaces = {"compare.vae", "exp_wallclock.vae", "exp_generation_budget.vae", "gme_levels.vae"}
    resolved = run_parameters(params, namespaces)
    assert {resolved[ns]["train_encoder"]["beta"] for ns in namespaces} == {params["methods"]["vae"]["train_encoder"]["beta"]}
    changed = run_parameters(with_value(params, "methods.vae.train_encoder.beta", 0.7), namespaces)
    assert {changed[ns]["train_encoder"]["beta"] for ns in namespaces} == {0.7}, "one place changes every user"
    own = run_parameters(with_value(params, "compare.vae", {"train_encoder": {"beta": 0.3}}), namespaces)
    assert own["compare.vae"]["train_encoder"]["beta"] == 0.3 and own["exp_wallclock.vae"]["train_encoder"]["beta"] == 0.1
    assert variant_names("compare") == ["gpe", "vae", "beta_vae", "ae", "vae_mds", "ae_mds"] == list(params["methods"])


def test_only_the_namespaces_of_the_run_are_merged_so_another_experiments_bad_value_does_not_stop_it(params):
    broken = with_value(params, "exp_decoder_vs_gme.thresholds.lowest", -1)
    assert set(run_parameters(broken, {"compare.vae", "compare"})) == {"compare.vae"}
    with pytest.raises(ParameterError, match="exp_decoder_vs_gme.thresholds must map highest and lowest to positive"):
        run_parameters(with_value(broken, "paper_report.seeds", 1), {"gme_levels.seed_0.level_0"})  # E3 reads its decoders


def test_an_experiments_own_dataset_reaches_its_variants(params):
    resolved = run_parameters(params, {"exp_gmm_latents", "exp_gmm_latents.gpe"})
    assert resolved["exp_gmm_latents"]["ingest"]["dataset"] == "gmm" == resolved["exp_gmm_latents.gpe"]["ingest"]["dataset"]
    assert resolved["exp_gmm_latents.gpe"]["train_encoder"]["latent_dim"] == 2


def test_the_parent_run_logs_the_configured_parameters_pruned_and_each_child_its_merged_sections(params):
    from gpe_pipeline.hooks import run_parameter_view, variant_parameter_view

    pipeline = create_pipeline()
    named = with_value(params, "compare.vae.train_encoder", {"architecture": "conv32"})
    resolved = run_parameters(named, {node.namespace for node in pipeline.nodes if node.namespace})
    parent = run_parameter_view(named, resolved, pipeline)
    assert set(parent) == {"ingest", "train_encoder", "cache_latents", "train_decoder", "train_flow", "evaluate", "methods", "compare"}
    assert set(parent["train_encoder"]["model_options"]) == {"mlp", "conv32"}, "a variant's architecture keeps its options"
    assert set(parent["train_decoder"]["model_options"]) == {"mlp"}, "other architectures' options are left out"
    child = variant_parameter_view({**resolved["compare.gpe"], "ingest": named["ingest"]})
    assert set(child["train_encoder"]["model_options"]) == {"mlp"} and "gmm" not in child["ingest"]


def test_the_study_joint_vae_stops_at_the_lower_of_its_readers_levels_and_keeps_both(params):
    from gpe_pipeline.variants import generation_reads_shared_vae

    def shared_training(parameters):
        return run_parameters(parameters, {"gme_levels.seed_0.vae_joint"})["gme_levels.seed_0.vae_joint"]["train_decoder"]

    # conf/base: E4 reads it at its lowest threshold 0.022, E6 at the decoder stage's target 0.01.
    training = shared_training(params)["training"]
    assert (training["target"], training["snapshot_at"], training["eval_every"]) == (0.01, [0.022, 0.01], 25)
    assert generation_reads_shared_vae(params)
    # E6's own target moves the shared run's stop with it, and E6 still reads the shared run.
    lower = with_value(params, "exp_generation_budget.vae.train_decoder.training.target", 0.005)
    assert shared_training(lower)["training"]["snapshot_at"] == [0.022, 0.005] and generation_reads_shared_vae(lower)
    # No target: the shared run trains its whole budget and keeps E4's level only.
    open_ended = with_value(params, "train_decoder.training.target", None)
    assert (shared_training(open_ended)["training"]["target"], shared_training(open_ended)["training"]["snapshot_at"]) == (
        None,
        [0.022],
    )
    # A setting that changes E6's VAE's weights (or the shared one's) makes E6 train its own.
    assert not generation_reads_shared_vae(with_value(params, "exp_generation_budget.vae.train_encoder.beta", 0.5))
    assert not generation_reads_shared_vae(with_value(params, "gme_levels.vae_joint.train_decoder.training.lr", 3e-3))
    assert generation_reads_shared_vae(with_value(params, "exp_generation_budget.vae.train_decoder.training.eval_every", 50))


def test_e6_trains_its_own_vae_only_when_its_settings_differ_from_the_study_joint_vae(params):
    from gpe_pipeline.pipelines.build_parameters import record
    from gpe_pipeline.pipelines.exp_generation_budget.pipeline import create_pipeline as generation_pipeline

    def trained_encoders(parameters):
        record(parameters)
        return sorted(n.namespace for n in generation_pipeline().nodes if n.name.endswith(".train_encoder"))

    assert trained_encoders(params) == [
        "exp_generation_budget.seed_0.gpe",
        "exp_generation_budget.seed_1.gpe",
        "exp_generation_budget.seed_2.gpe",
        "gme_levels.seed_0.vae_joint",
        "gme_levels.seed_1.vae_joint",
        "gme_levels.seed_2.vae_joint",
    ]
    own = trained_encoders(with_value(params, "exp_generation_budget.vae.train_encoder.beta", 0.5))
    assert [ns for ns in own if "vae" in ns] == [f"exp_generation_budget.seed_{k}.vae" for k in range(3)]
