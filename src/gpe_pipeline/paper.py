"""Numbers quoted from the paper, as plain constants (no dependencies: the GPU check imports them on a bare machine)."""

# The paper's Table 2 (section 8.5): seconds per iteration on one NVIDIA V100, by trainer (row) and dataset (column).
# The paper prints AE+MDS on MNIST as "0,025".
PAPER_TABLE2_DATASETS = ("MNIST", "CIFAR-10", "CelebA", "CelebA-HQ")
PAPER_SECONDS_PER_ITERATION = {
    "GPE encoder": (0.020, 0.020, 0.142, 0.124),
    "GPE decoder": (0.022, 0.306, 0.191, 0.588),
    "VAE": (0.024, 0.318, 0.203, 0.705),
    "VAE+MDS": (0.025, 0.320, 0.205, 0.705),
    "AE": (0.023, 0.318, 0.203, 0.704),
    "AE+MDS": (0.025, 0.320, 0.204, 0.705),
}
