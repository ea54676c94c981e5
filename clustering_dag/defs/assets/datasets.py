"""The data: each dataset's train and test splits and their noisy copies. Shared by the training
variants."""

from dagster import AssetExecutionContext, Config, MetadataValue, Output
from pydantic import Field

from clustering_dag.core.configs import DEFAULT_SEED
from clustering_dag.defs.assets.common import image_metadata
from clustering_dag.defs.cached import cached_asset
from clustering_dag.defs.resources import DatasetSource


class RawDataConfig(Config):
    """Which rows to keep; the full sets by default. Quick profiles take the first rows."""

    train_rows: int | None = Field(default=None, ge=1, description="First N training rows (None = all).")
    test_rows: int | None = Field(default=None, ge=1, description="First N test rows (None = all).")


class NoiseConfig(Config):
    """Gaussian pixel noise, N(0, sigma^2), as the paper adds to its images."""

    sigma: float = Field(default=0.05, ge=0.0, description="Standard deviation of the noise.")
    seed: int = Field(default=DEFAULT_SEED, description="Seed of the noise generator.")
    clip: bool = Field(default=False, description="Clip noisy pixels to [0, 1] (the paper does not).")


def source_of(context: AssetExecutionContext, dataset_source: DatasetSource, **_) -> list:
    """What identifies the dataset's files: where they are, and their fingerprint."""
    where = dataset_source.locate(context.partition_key)
    return [str(where), dataset_source.fingerprint(context.partition_key, where)]


@cached_asset(runs=(DatasetSource.load, DatasetSource.fingerprint), key_extra=source_of)
def raw_dataset(context: AssetExecutionContext, config: RawDataConfig, dataset_source: DatasetSource):
    """Train and test features with labels (where the dataset has them), float32 in [0, 1]: the
    paper's images flattened to 784 columns, or a user's registered table or image array."""
    import numpy as np

    data = dataset_source.load(context.partition_key).head(config.train_rows, config.test_rows)
    shape = data.image_shape or [data.dim]
    counts = "unlabelled" if data.train_y is None else " ".join(
        f"{i}:{c}" for i, c in enumerate(np.bincount(data.train_y)))
    context.log.info(f"{context.partition_key}: {data.summary()} from {data.meta['source']}")
    return Output(data, metadata={
        "train_shape": str((len(data.train_x), *shape)),
        "test_shape": str((len(data.test_x), *shape)),
        "source": MetadataValue.path(data.meta["source"]),
        "n_clusters": data.n_clusters,
        "train_label_counts": counts,
        "value_range": f"[{data.train_x.min():.3f}, {data.train_x.max():.3f}]",
        "samples": image_metadata([data.test_x[:10]], ["test samples"], data.image_shape),
    })


@cached_asset()
def noisy_dataset(context: AssetExecutionContext, config: NoiseConfig, raw_dataset):
    """The paper's noisy images: the test split plus N(0, sigma^2) noise, and, as the authors did,
    the training split with its own noise draw (train: seed, test: seed + 1)."""
    from clustering_dag.core.noise import add_gaussian_noise

    train = add_gaussian_noise(raw_dataset.train_x, config.sigma, config.seed, config.clip)
    test = add_gaussian_noise(raw_dataset.test_x, config.sigma, config.seed + 1, config.clip)
    delta = test - raw_dataset.test_x
    return Output(raw_dataset.with_x(train, test, noise=config.model_dump()), metadata={
        "sigma": config.sigma, "seed": config.seed, "clipped": config.clip,
        "measured_noise_mean": float(delta.mean()),
        "measured_noise_std": float(delta.std()),
        "value_range": f"[{test.min():.3f}, {test.max():.3f}]",
        "samples": image_metadata([raw_dataset.test_x[:10], test[:10]],
                                  ["clean", f"noisy (sigma={config.sigma})"], raw_dataset.image_shape),
    })
