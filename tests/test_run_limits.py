"""The "Limits of this run" lines (run_limits.limits_of_run), on small hand-made parameters and metadata."""

from __future__ import annotations

import copy

from gpe_pipeline.run_limits import limits_of_run

PARAMETERS = {
    "train_encoder": {
        "architecture": "mlp",
        "latent_dim": 16,
        "model_options": {"mlp": {"hidden": [64, 64], "activation": "softplus"}, "conv32": {"width": 64}},
        "training": {"max_steps": 300, "target": 0.0005},
    },
    "train_decoder": {"architecture": "mlp", "model_options": {"mlp": {"hidden": [32]}}, "training": {"max_steps": 400, "target": 0.01}},
    "train_flow": {"architecture": "mlp", "model_options": {"mlp": {"hidden": [128]}}, "training": {"max_steps": 600, "target": None}},
    "evaluate": {
        "max_points": 1000,
        "kid": {"subset_size": 100, "subsets": 50},
        "bootstrap": {"resamples": 200, "confidence": 0.95},
        "sampling": {"solver": "heun", "steps": 50},
    },
    "exp_gmm_latents": {"ingest": {"dataset": "gmm"}, "shared": {"train_encoder": {"latent_dim": 2, "training": {"max_steps": 150}}}},
    "exp_wallclock": {"threshold": 0.022},  # nothing that changes a network or a budget: no line
}
DIGITS = {"dataset": "digits", "shape": [1, 8, 8], "dim": 64, "num_train": 1437, "num_validation": 160, "num_heldout": 180}


def test_the_limits_of_a_digits_run_state_its_scale_networks_budgets_seeds_and_the_papers_differences():
    assert limits_of_run(PARAMETERS, DIGITS) == [
        "Scale: digits (8 x 8 images, 1 channel); 1,437 train / 160 validation / 180 held-out examples (held-out: the "
        "split only evaluate reads).",
        "Networks: encoder mlp (hidden [64, 64], activation softplus); decoder mlp (hidden [32]); flow mlp (hidden "
        "[128]); latent size 16.",
        "Budgets (training.max_steps): encoder 300 steps (or its validation target 0.0005); decoder 400 steps (or its "
        "validation target 0.01); flow 600 steps; a VAE-family baseline trains jointly on the decoder's budget.",
        "exp_gmm_latents sets its own dataset gmm, latent size 2, encoder 150 steps.",
        "Seeds: 1 (paper_report.seeds not set). Seed k adds k to every training's seed (initial weights, batch order, "
        "noise) and to evaluate's sampling seeds; the data split and the feature classifier are the same in every seed.",
        "Generation distances: N = 180 images per set (min of evaluate.max_points 1000, the held-out and the train "
        "split); kernel distances over 50 subsets of 100 rows; Frechet intervals from 200 bootstrap resamples at 95%; "
        "samples by heun with 50 steps.",
        "Not the paper's data: digits is none of its datasets (MNIST, CIFAR-10, CelebA, CelebA-HQ; a mixture in R^500 "
        "for Fig. 3), so every verdict tests a claim on other data.",
        "Not the paper's networks: the paper trains its reference implementation's networks (paper_mnist ... "
        "paper_celebahq), this run trains encoder mlp, decoder mlp.",
        "Smaller generation samples: the paper's FID compares 10,000 generated with 10,000 real images, this run's "
        "distances 180 with 180, so their intervals are wider.",
    ]


def test_the_seeds_of_the_report_and_of_an_experiment_are_counted():
    parameters = {**PARAMETERS, "paper_report": {"seeds": 3}, "exp_wallclock": {"seeds": 2}}
    line = next(line for line in limits_of_run(parameters, DIGITS) if line.startswith("Seeds: "))
    assert line.startswith("Seeds: 3 (paper_report.seeds); an experiment's own: 2 (exp_wallclock.seeds). Seed k adds k")


def test_a_paper_setting_names_only_what_still_differs():
    parameters = copy.deepcopy(PARAMETERS)
    for section in ("train_encoder", "train_decoder"):
        parameters[section]["architecture"] = "paper_mnist"  # no model options: the name alone
    parameters["evaluate"]["max_points"] = 10_000
    mnist = {"dataset": "mnist", "shape": [1, 28, 28], "num_train": 54_000, "num_validation": 6_000, "num_heldout": 10_000}
    lines = limits_of_run(parameters, mnist)
    assert "Networks: encoder paper_mnist; decoder paper_mnist; flow mlp (hidden [128]); latent size 16." in lines
    assert [line for line in lines if line.startswith("Not the paper's") or line.startswith("Smaller")] == [
        "Not the paper's image size: MNIST at 28 x 28 here, 32 x 32 in the paper."
    ], "the paper's networks at N = 10,000: only the image size differs"
    parameters["train_decoder"]["architecture"] = "conv32"
    assert "Not the paper's networks: the paper trains paper_mnist, this run trains encoder paper_mnist, decoder conv32." in (
        limits_of_run(parameters, {**mnist, "shape": [1, 32, 32]})
    )


def test_vector_data_are_described_by_their_dimension():
    gmm = {"dataset": "gmm", "shape": [500], "dim": 500, "num_train": 3000, "num_validation": 400, "num_heldout": 600}
    assert limits_of_run(PARAMETERS, gmm)[0].startswith("Scale: gmm (500-dimensional vectors); 3,000 train / 400 validation")
