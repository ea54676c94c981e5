"""Raw datasets and their noisy copies."""


from dagster import AssetExecutionContext, Config, MetadataValue, Output
from pydantic import Field

from clustering_dag.defs.assets.common import compute_or_reuse, keyed_output, parquet_asset, png_markdown
from clustering_dag.defs.resources import DatasetSource
from clustering_dag.defs.storage import AssetStorage
from clustering_dag.defs.versioning import unversioned


class RawDataConfig(Config):
    """Which rows to keep; the full sets by default. Quick profiles take the first rows."""

    train_rows: int | None = Field(default=None, ge=1, description="First N training rows (None = all).")
    test_rows: int | None = Field(default=None, ge=1, description="First N test rows (None = all).")


class NoiseConfig(Config):
    """Gaussian pixel noise, N(0, sigma^2), as the paper adds to its images."""

    sigma: float = Field(default=0.05, ge=0.0, description="Standard deviation of the noise.")
    seed: int = Field(default=1234, description="Seed of the noise generator.")
    clip: bool = Field(default=False, description="Clip noisy pixels to [0, 1] (the paper does not).")


@unversioned
def _label_counts(y) -> str:
    import numpy as np

    if y is None:
        return "unlabelled"
    return " ".join(f"{i}:{c}" for i, c in enumerate(np.bincount(y)))


@unversioned
def _samples(rows: list, titles: list[str], image_shape) -> MetadataValue:
    from clustering_dag.core.figures import image_rows, to_png

    return png_markdown(to_png(image_rows(rows, titles, image_shape)))


@parquet_asset(group_name="data", runs=(DatasetSource.load, DatasetSource.fingerprint))
def raw_dataset(context: AssetExecutionContext, config: RawDataConfig,
                dataset_source: DatasetSource, asset_storage: AssetStorage) -> Output:
    """Train and test features with labels (where the dataset has them), float32 in [0, 1]: the
    paper's images flattened to 784 columns, or a user's registered table or image array."""
    where = dataset_source.locate(context.partition_key)

    def load():
        return dataset_source.load(context.partition_key, where).head(config.train_rows, config.test_rows)

    source = [str(where), dataset_source.fingerprint(context.partition_key, where)]
    data, reused = compute_or_reuse(context, asset_storage, load, config=config, extra=source)
    if reused:
        return keyed_output(data, True, source=MetadataValue.path(str(where)))
    shape = data.image_shape or [data.dim]
    context.log.info(f"{context.partition_key}: {data.summary()} from {data.meta['source']}")
    return keyed_output(data, False, **{
        "train_shape": str((len(data.train_x), *shape)),
        "test_shape": str((len(data.test_x), *shape)),
        "source": MetadataValue.path(data.meta["source"]),
        "n_clusters": data.n_clusters,
        "train_label_counts": _label_counts(data.train_y),
        "value_range": f"[{data.train_x.min():.3f}, {data.train_x.max():.3f}]",
        "samples": _samples([data.test_x[:10]], ["test samples"], data.image_shape),
    })


@parquet_asset(group_name="data")
def noisy_test_set(context: AssetExecutionContext, config: NoiseConfig, raw_dataset,
                   asset_storage: AssetStorage) -> Output:
    """The paper's noisy images: the test set plus N(0, sigma^2) noise, and, as the authors did,
    the training set with its own noise draw (train: seed, test: seed + 1)."""

    def make_noisy():
        from clustering_dag.core.noise import add_gaussian_noise

        train = add_gaussian_noise(raw_dataset.train_x, config.sigma, config.seed, config.clip)
        test = add_gaussian_noise(raw_dataset.test_x, config.sigma, config.seed + 1, config.clip)
        return raw_dataset.with_x(train, test, noise=config.model_dump())

    noisy, reused = compute_or_reuse(context, asset_storage, make_noisy, config=config,
                                     inputs=[raw_dataset])
    if reused:
        return keyed_output(noisy, True, sigma=config.sigma, seed=config.seed, clipped=config.clip)
    test = noisy.test_x
    delta = test - raw_dataset.test_x
    shape = raw_dataset.image_shape
    return keyed_output(noisy, False, **{
        "sigma": config.sigma,
        "seed": config.seed,
        "clipped": config.clip,
        "measured_noise_mean": float(delta.mean()),
        "measured_noise_std": float(delta.std()),
        "value_range": f"[{test.min():.3f}, {test.max():.3f}]",
        "samples": _samples([raw_dataset.test_x[:10], test[:10]],
                            ["clean", f"noisy (sigma={config.sigma})"], shape),
    })
