"""Self-labelling refinement of each variant (beyond the paper, the last step of SCAN): a classifier
of the noisy images learned from the manifold stage's most confident clusters, then from its own
surest predictions. ``refined_classifier`` is the stored model that maps a raw input straight to a
cluster; its cluster probabilities are the ``refined`` space (:mod:`clustering_dag.core.spaces`)."""

from dagster import AssetExecutionContext, Output

from clustering_dag.core import configs
from clustering_dag.defs.assets.common import table_metadata
from clustering_dag.defs.cached import cached_asset
from clustering_dag.defs.config import core_values, dagster_config
from clustering_dag.defs.executors import QUEUE_TAG, VAE_QUEUE
from clustering_dag.defs.resources import Accelerator
from clustering_dag.defs.versioning import unversioned

RefinementConfig = dagster_config(configs.RefineConfig, "RefinementConfig",
                                  exclude=("input_dim", "n_clusters", "image_shape"))


@cached_asset(per_variant=True, group="clustering", kind="model", kinds={"tensorflow"},
              runs=(Accelerator.select,), pool="vae_training", op_tags={QUEUE_TAG: VAE_QUEUE})
def refined_classifier(context: AssetExecutionContext, config: RefinementConfig, accelerator: Accelerator,
                       noisy_dataset, manifold_representation, clusters_manifold):
    """A classifier of the noisy images trained on the manifold mixture's most confident training
    assignments (augmented by random shifts, or the transformations of the data's kind, and noise),
    then on its own surest predictions."""
    from clustering_dag.core.refine import config_for
    from clustering_dag.core.spaces import train_refined

    cfg = config_for(noisy_dataset, len(clusters_manifold), **core_values(configs.RefineConfig, config))
    trained = train_refined(noisy_dataset, manifold_representation, clusters_manifold, cfg,
                            device=accelerator.select(context.log), log=context.log.info)
    return Output(trained, metadata=_classifier_summary(trained))


@unversioned
def _classifier_summary(trained) -> dict:
    import pandas as pd

    history = pd.DataFrame(trained.history)
    last = history.groupby("round").last().reset_index()
    return {"rounds": int(history["round"].max()), "rows_learned": trained.diagnostics["rows_learned"],
            "train_seconds": round(trained.seconds, 2), "rounds_summary": table_metadata(last, digits=4)}
