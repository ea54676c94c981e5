"""The noisy test split scored as a later batch would be (:mod:`clustering_dag.core.scoring`),
once per variant: the reference that a batch's drift is measured against, and, by its check, the
proof that scoring a batch with the stored models gives the clusters the run itself gave. The
batches themselves are the ``clustering_dag.batches`` code location."""

from dagster import AssetCheckResult, MetadataValue, Output

from clustering_dag.core.spaces import scorable_spaces, scored_with
from clustering_dag.defs.cached import cached_asset, check_per_variant
from clustering_dag.defs.versioning import unversioned

# The spaces a batch is scored in, and what it is scored with: the stored value of each of these
# assets for its dataset (the variant's, where the asset is per variant): its layout, what each
# space projects new rows with and its clusters, the test split's scores.
SCORED_SPACES = scorable_spaces()
SCORED_WITH = tuple(dict.fromkeys(("raw_dataset", *scored_with(SCORED_SPACES), "test_scores")))


def test_scores_asset(spaces):
    @cached_asset(per_variant=True, group="scoring", reads=("noisy_dataset", *scored_with(spaces)),
                  runs=tuple(s.project for s in spaces))
    def test_scores(context, **values):
        """Every noisy test image scored by the stored models, as a batch of new rows is: its
        cluster, and its distance to the centre (a classifier: its probability), in every space
        that can score new rows."""
        from clustering_dag.core.scoring import drift_limits, score

        noisy = values["noisy_dataset"]  # a space may project new rows with it too
        frame = score(spaces, values, noisy.test_x, labels=noisy.test_y)
        return Output(frame, metadata=_limits_metadata(drift_limits(frame)))

    return test_scores


test_scores = test_scores_asset(SCORED_SPACES)


@unversioned
def _limits_metadata(limits: dict) -> dict:
    return {"drift_limits": MetadataValue.json({k: round(v, 6) for k, v in limits.items()})}


def _matches(test_scores, cluster_assignments) -> AssetCheckResult:
    """Scoring the noisy test split with the stored models gives, row for row, the clusters the run
    gave it (``cluster_assignments``) in every space a batch is scored in."""
    spaces = [c.removesuffix("_cluster") for c in test_scores.columns if c.endswith("_cluster")]
    differ = {s: int((test_scores[f"{s}_cluster"].to_numpy() != cluster_assignments[s].to_numpy()).sum())
              for s in spaces}
    bad = {s: n for s, n in differ.items() if n}
    return AssetCheckResult(
        passed=not bad and len(test_scores) == len(cluster_assignments),
        description=(f"rows scored differently from cluster_assignments: {bad}; the stored models "
                     "are not the ones the run used: re-materialize test_scores") if bad else None,
        metadata={"rows": len(test_scores), "differing_rows": MetadataValue.json(differ)})


scores_match_assignments = check_per_variant(_matches, asset="test_scores", reads=("cluster_assignments",),
                                             name="scores_match_assignments", blocking=True)
