"""The noisy test split scored as a later batch would be (:mod:`clustering_dag.core.scoring`),
once per variant: the reference that a batch's drift is measured against, and, by its check, the
proof that scoring a batch with the stored models gives the clusters the run itself gave. The
batches themselves are the ``clustering_dag.batches`` code location."""

import warnings

from dagster import AssetCheckResult, AssetIn, MetadataValue, Output, PreviewWarning, asset_check

from clustering_dag.core.variants import VARIANTS
from clustering_dag.defs.cached import asset_key, cached_asset
from clustering_dag.defs.partitions import dataset_partitions
from clustering_dag.defs.versioning import unversioned

# What a batch is scored with: the stored value of each of these assets for its dataset (the
# variant's, where the asset is per variant): its layout, the models (the parameters of
# `StoredModels.of`), the test split's scores.
MODELS = ("kmeans_original", "kmeans_reconstructed", "kmeans_latent", "trained_vae", "refined_classifier")
SCORED_WITH = ("raw_dataset", *MODELS, "test_scores")


@cached_asset(per_variant=True, group="scoring")
def test_scores(context, noisy_test_set, kmeans_original, kmeans_reconstructed, kmeans_latent,
                trained_vae, refined_classifier):
    """Every noisy test image scored by the stored models, as a batch of new rows is: its cluster
    and distance to the centre in the original, reconstructed and latent spaces, and the refined
    classifier's cluster and probability."""
    from clustering_dag.core.scoring import StoredModels, drift_limits, score

    models = StoredModels.of(kmeans_original, kmeans_reconstructed, kmeans_latent, trained_vae,
                             refined_classifier)
    frame = score(models, noisy_test_set.test_x, labels=noisy_test_set.test_y)
    return Output(frame, metadata=_limits_metadata(drift_limits(frame)))


@unversioned
def _limits_metadata(limits: dict) -> dict:
    return {"drift_limits": MetadataValue.json({k: round(v, 6) for k, v in limits.items()})}


def _matches(test_scores, cluster_assignments) -> AssetCheckResult:
    """Scoring the noisy test split with the stored models gives, row for row, the clusters the run
    gave it (``cluster_assignments``) in every space a batch is scored in."""
    from clustering_dag.core.scoring import SCORED_SPACES

    differ = {s: int((test_scores[f"{s}_cluster"].to_numpy() != cluster_assignments[s].to_numpy()).sum())
              for s in SCORED_SPACES}
    bad = {s: n for s, n in differ.items() if n}
    return AssetCheckResult(
        passed=not bad and len(test_scores) == len(cluster_assignments),
        description=(f"rows scored differently from cluster_assignments: {bad}; the stored models "
                     "are not the ones the run used: re-materialize test_scores") if bad else None,
        metadata={"rows": len(test_scores), "differing_rows": MetadataValue.json(differ)})


with warnings.catch_warnings():  # a partitioned check (one verdict per dataset) is a Dagster preview
    warnings.simplefilter("ignore", PreviewWarning)
    scores_match_assignments = [
        asset_check(asset=asset_key("test_scores", v), name="scores_match_assignments", blocking=True,
                    partitions_def=dataset_partitions, description=_matches.__doc__,
                    additional_ins={"cluster_assignments": AssetIn(asset_key("cluster_assignments", v))}
                    )(_matches)
        for v in VARIANTS]

