"""Self-labelling refinement of each variant (beyond the paper, the last step of SCAN): a classifier
of the noisy images learned from the manifold stage's most confident clusters, then from its own
surest predictions. ``refined_classifier`` is the stored model that maps a raw input straight to a
cluster; ``refined_representation`` is its cluster probabilities, the ``refined`` row of the
metric tables."""

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
                       noisy_test_set, manifold_representation, kmeans_manifold):
    """A classifier of the noisy images trained on the manifold mixture's most confident training
    assignments (augmented by shifts and noise), then on its own surest predictions."""
    from clustering_dag.core.clustering import ClusterModel
    from clustering_dag.core.configs import ManifoldConfig
    from clustering_dag.core.manifold import fit_sample
    from clustering_dag.core.refine import config_for, refine

    mixture = ClusterModel.from_frame(kmeans_manifold)
    cfg = config_for(noisy_test_set, len(mixture.centers), **core_values(configs.RefineConfig, config))
    manifold = manifold_representation
    rows = fit_sample(len(noisy_test_set.train_x), ManifoldConfig(**manifold.meta["umap"]))
    device = accelerator.select(context.log)
    trained = refine(cfg, noisy_test_set, rows, mixture.predict(manifold.train_x),
                     mixture.confidence(manifold.train_x), log=context.log.info, device=device)
    return Output(trained, metadata=_classifier_summary(trained))


@unversioned
def _classifier_summary(trained) -> dict:
    import pandas as pd

    history = pd.DataFrame(trained.history)
    last = history.groupby("round").last().reset_index()
    return {"rounds": int(history["round"].max()), "rows_learned": trained.diagnostics["rows_learned"],
            "train_seconds": round(trained.seconds, 2), "rounds_summary": table_metadata(last, digits=4)}


@cached_asset(per_variant=True, group="clustering")
def refined_representation(context: AssetExecutionContext, refined_classifier, noisy_test_set):
    """The refined classifier's cluster probabilities of every noisy training and test image."""
    import numpy as np

    from clustering_dag.core.refine import refined_representation as probabilities

    refined = probabilities(refined_classifier, noisy_test_set)
    return Output(refined, metadata={
        "dim": refined.dim, "test_mean_confidence": float(refined.test_x.max(1).mean()),
        "test_clusters_used": int(len(np.unique(refined.test_x.argmax(1))))})
