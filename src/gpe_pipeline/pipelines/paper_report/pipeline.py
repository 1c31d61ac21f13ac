"""The paper_report pipeline: the experiment pipelines side by side, then write_report.

`kedro run --pipeline=paper_report` writes data/08_reporting/report.md (also logged to MLflow), which links each
experiment's figure and table under data/08_reporting/<experiment>/.
"""

import importlib

from kedro.pipeline import Pipeline

from gpe_pipeline.pipelines.variant_stages import summary_node

from .nodes import write_report

# The experiments in the paper's order (E1 ..); each is the package gpe_pipeline.pipelines.<name>.
EXPERIMENTS = (
    "exp_gmm_latents",
    "exp_encoder_stability",
    "exp_decoder_vs_gme",
    "exp_iterations_to_threshold",
    "exp_wallclock",
    "exp_generation_budget",
)


def create_pipeline(**kwargs) -> Pipeline:
    experiments = [importlib.import_module(f"gpe_pipeline.pipelines.{name}").create_pipeline() for name in EXPERIMENTS]
    report = summary_node(
        write_report,
        inputs={
            "run_context": "run_context",
            "parameters": "parameters",
            "metadata": "dataset_metadata",
            **{f"{name}__findings": f"{name}.findings" for name in EXPERIMENTS},
            **{f"{name}__summary": f"{name}.results_summary" for name in EXPERIMENTS},
        },
        outputs="paper_report",
        name="write_report",
    )
    return sum(experiments, Pipeline([])) + Pipeline([report], tags=["paper_report"])
