"""The evaluate pipeline."""

from kedro.pipeline import Node, Pipeline

from .nodes import compute_metrics, generate_samples, make_figures, reconstruct_heldout, train_feature_classifier


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                train_feature_classifier,
                inputs=["train_data", "dataset_metadata", "params:evaluate"],
                outputs=["feature_classifier", "feature_classifier_history"],
                name="train_feature_classifier",
            ),
            Node(
                reconstruct_heldout,
                inputs=["decoder", "heldout_latents", "params:evaluate"],
                outputs="heldout_reconstructions",
                name="reconstruct_heldout",
            ),
            Node(
                generate_samples,
                inputs=["flow", "decoder", "latent_stats", "dataset_metadata", "params:evaluate"],
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
                    "params:evaluate",
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
                    "params:evaluate",
                ],
                outputs="evaluation_figures",
                name="make_figures",
            ),
        ]
    )
