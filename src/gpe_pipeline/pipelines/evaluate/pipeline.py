"""The evaluate pipeline."""

from kedro.pipeline import Node, Pipeline

from gpe_pipeline.evaluation import generate_samples  # a node here, and E6's sampler of its snapshots

from .nodes import compute_metrics, make_figures, reconstruct_heldout, train_feature_classifier


def create_pipeline(parameters: str = "params:{}", **kwargs) -> Pipeline:
    """The feature classifier, then every measurement and figure (parameters: see measurement_pipeline)."""
    return classifier_pipeline() + measurement_pipeline(parameters)


def classifier_pipeline() -> Pipeline:
    """The classifier whose features give fd_classifier: trained once on the train split, shared by every variant."""
    return Pipeline(
        [
            Node(
                train_feature_classifier,
                inputs=["train_data", "dataset_metadata", "params:evaluate"],
                outputs=["feature_classifier", "feature_classifier_history"],
                name="train_feature_classifier",
            )
        ],
        tags=["evaluate"],
    )


def measurement_pipeline(parameters: str = "params:{}") -> Pipeline:
    """Reconstructions, samples, metrics and figures; parameters names the evaluate section's input."""
    evaluate = parameters.format("evaluate")
    return Pipeline(
        [
            Node(
                reconstruct_heldout,
                inputs=["decoder", "heldout_latents", evaluate],
                outputs="heldout_reconstructions",
                name="reconstruct_heldout",
            ),
            Node(
                generate_samples,
                inputs=["flow", "decoder", "latent_stats", "dataset_metadata", evaluate],
                outputs=["generated_samples", "generation_info"],
                name="generate_samples",
            ),
            Node(
                compute_metrics,
                inputs=[
                    "encoder",
                    "train_data",
                    "heldout_data",
                    "heldout_latents",
                    "heldout_reconstructions",
                    "generated_samples",
                    "generation_info",
                    "feature_classifier",
                    evaluate,
                ],
                outputs="evaluation_metrics",
                name="compute_metrics",
            ),
            Node(
                make_figures,
                inputs=[
                    "heldout_data",
                    "heldout_reconstructions",
                    "generated_samples",
                    "heldout_latents",
                    "latent_stats",
                    "decoder",
                    "encoder_history",
                    "decoder_history",
                    "flow_history",
                    evaluate,
                ],
                outputs="evaluation_figures",
                name="make_figures",
            ),
        ],
        tags=["evaluate"],
    )
