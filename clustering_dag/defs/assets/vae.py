"""The VAE and the representations it gives, once per training variant (``paper``, ``elbo``).

Each variant's assets carry the variant as a key prefix (``paper/trained_vae``), so both sit side
by side in the UI and share one code path.
"""


from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    Config,
    MetadataValue,
    Output,
)
from pydantic import Field

from clustering_dag.core.trained import collapse_diagnosis
from clustering_dag.core.variants import VARIANTS, variant_config
from clustering_dag.defs.assets.common import (
    compute_or_reuse,
    fingerprint,
    keyed_output,
    parquet_asset,
    png_markdown,
    reuse,
    table_metadata,
)
from clustering_dag.defs.executors import QUEUE_TAG, VAE_QUEUE
from clustering_dag.defs.partitions import dataset_partitions
from clustering_dag.defs.resources import Accelerator
from clustering_dag.defs.storage import AssetStorage, with_key
from clustering_dag.defs.versioning import asset_from_source, multi_asset_from_source, unversioned


class TrainingConfig(Config):
    """VAE hyper-parameters; defaults are the paper's. The variant fixes the latent code (sample
    or mean) and whether the training images are the noisy ones, and gives the defaults of beta,
    the likelihood and the protection against posterior collapse (KL warm-up, free bits)."""

    epochs: int = Field(default=60, ge=1)
    batch_size: int = Field(default=512, ge=1)
    learning_rate: float = Field(default=1e-3, gt=0)
    seed: int = 1234
    hidden: list[int] = Field(default=[128, 64, 32], description="Encoder layer sizes (decoder mirrors).")
    latent_dim: int = Field(default=10, ge=1)
    beta: float | None = Field(default=None, ge=0, description="KL weight; None = the variant's.")
    likelihood: str | None = Field(
        default=None, pattern="^(auto|clipped_bce|bernoulli|gaussian)$",
        description="p(x|z); None = the variant's ('paper': clipped_bce; 'elbo': auto = bernoulli for "
                    "images, gaussian for feature tables).")
    kl_warmup: float | None = Field(
        default=None, ge=0, le=1, description="Share of training over which the KL weight rises from 0 "
                                              "to beta; None = the variant's ('elbo': 0.2, 'paper': 0).")
    free_bits: float | None = Field(
        default=None, ge=0, description="Nats per latent dimension the KL may use unpenalised; None = 0.")


@unversioned
def _latent_check(trained, collapse: str | None) -> AssetCheckResult:
    d = trained.diagnostics
    return AssetCheckResult(
        check_name="latent_code_used", passed=collapse is None, severity=AssetCheckSeverity.ERROR,
        description=collapse or f"{d.get('active_dims')} of {d.get('latent_dim')} latent dimensions active",
        metadata={"active_latent_dims": d.get("active_dims", -1),
                  "posterior_mean_variance": MetadataValue.json(d.get("mean_variance", [])),
                  "kl_per_dim": MetadataValue.json(d.get("kl_per_dim", []))})


@unversioned
def _training_summary(trained) -> dict:
    import pandas as pd

    from clustering_dag.core.figures import loss_curve, to_png

    return {
        "history": table_metadata(pd.DataFrame(trained.history), digits=4),
        "loss_curve": png_markdown(to_png(loss_curve(trained.history)), "loss curve"),
    }


@parquet_asset(group_name="data")
def original_representation(context: AssetExecutionContext, noisy_test_set,
                            asset_storage: AssetStorage) -> Output:
    """The paper's 'original' representation: the noisy pixels themselves (train and test)."""
    value, reused = compute_or_reuse(
        context, asset_storage, inputs=[noisy_test_set],
        compute=lambda: noisy_test_set.with_x(noisy_test_set.train_x, noisy_test_set.test_x,
                                              representation="original"))
    return keyed_output(value, reused)


def build_vae_assets(variant: str) -> list:
    group = f"vae_{variant}"

    @asset_from_source(
        name="trained_vae",
        key_prefix=[variant],
        partitions_def=dataset_partitions,
        ins={"raw_dataset": AssetIn(AssetKey("raw_dataset")),
             "noisy_test_set": AssetIn(AssetKey("noisy_test_set"))},
        io_manager_key="model_io_manager",
        group_name=group,
        kinds={"tensorflow"},
        runs=(Accelerator.select,),
        # One training at a time per pool slot: `dagster instance concurrency set vae_training 1`
        # keeps a single GPU from being shared by two runs.
        pool="vae_training",
        # On the Celery executor, training goes to the `vae` queue: the one GPU workers serve.
        op_tags={QUEUE_TAG: VAE_QUEUE},
        description=f"VAE trained as the '{variant}' variant: {VARIANTS[variant]}.",
        check_specs=[AssetCheckSpec(
            "latent_code_used", asset=AssetKey([variant, "trained_vae"]), blocking=True,
            description="At least one latent dimension is active (its posterior mean varies across "
                        "rows): no posterior collapse. Fails with the diagnosis and what to try.")],
    )
    def trained_vae(context: AssetExecutionContext, config: TrainingConfig, accelerator: Accelerator,
                    asset_storage: AssetStorage, raw_dataset, noisy_test_set):
        n_train = len(raw_dataset.train_x)
        if config.batch_size > n_train:
            context.log.info(f"batch_size {config.batch_size} > {n_train} training rows: using {n_train}")
        chosen = {k: v for k in ("beta", "likelihood", "kl_warmup", "free_bits")
                  if (v := getattr(config, k)) is not None}
        cfg = variant_config(
            variant, images=raw_dataset.image_shape is not None, input_dim=raw_dataset.dim,
            hidden=tuple(config.hidden), latent_dim=config.latent_dim, epochs=config.epochs,
            batch_size=min(config.batch_size, n_train), learning_rate=config.learning_rate,
            seed=config.seed, **chosen)
        x_source = cfg.training_data(raw_dataset, noisy_test_set)

        def train():
            from clustering_dag.core.vae import train_vae

            device = accelerator.select(context.log)
            context.log.info(f"training {variant} VAE on {len(x_source.train_x)} rows on {device}: {cfg}")

            def log_epoch(row: dict) -> None:
                context.log.info(
                    "epoch {epoch:3d}  loss {loss:.4f}  reconstruction {reconstruction:.4f}  "
                    "KL {kl:.3f}  {seconds:.2f} s  {samples_per_s:,.0f} samples/s".format(**row))

            return train_vae(cfg, x_source.train_x, device=device, on_epoch=log_epoch)

        # The device is not part of the key: a model trained on a GPU serves a CPU run and back.
        trained, reused = compute_or_reuse(context, asset_storage, train, kind="model",
                                           config=config, inputs=[x_source], extra=cfg.to_json())
        final = trained.final
        collapse = collapse_diagnosis(trained)
        if collapse:
            context.log.error(f"{variant} VAE on {context.partition_key}: {collapse}")
        yield keyed_output(trained, reused, **{
            "variant": variant,
            "likelihood": cfg.likelihood,
            "kl_warmup": cfg.kl_warmup,
            "free_bits": cfg.free_bits,
            "active_latent_dims": trained.diagnostics.get("active_dims", -1),
            "epochs": cfg.epochs,
            "final_loss": final["loss"],
            "final_reconstruction": final["reconstruction"],
            "final_kl": final["kl"],
            "train_seconds": round(trained.seconds, 2),
            "seconds_per_epoch": round(trained.seconds / cfg.epochs, 3),
            **_training_summary(trained),
        })
        yield _latent_check(trained, collapse)

    @multi_asset_from_source(
        name=f"{variant}_representations",
        partitions_def=dataset_partitions,
        outs={
            "reconstructed_representation": dict(
                key=AssetKey([variant, "reconstructed_representation"]),
                io_manager_key="parquet_io_manager", group_name=group, kinds={"parquet"},
                description="decoder(code) for the training and noisy test images."),
            "latent_representation": dict(
                key=AssetKey([variant, "latent_representation"]),
                io_manager_key="parquet_io_manager", group_name=group, kinds={"parquet"},
                description="The latent code of the training and noisy test images."),
        },
        ins={"trained_vae": AssetIn(AssetKey([variant, "trained_vae"])),
             "raw_dataset": AssetIn(AssetKey("raw_dataset")),
             "noisy_test_set": AssetIn(AssetKey("noisy_test_set"))},
    )
    def representations(context: AssetExecutionContext, trained_vae, raw_dataset, noisy_test_set,
                        asset_storage: AssetStorage):
        cfg = trained_vae.config
        inputs = [trained_vae, raw_dataset, noisy_test_set]
        keys = {out: fingerprint(context, inputs=inputs, output=out)
                for out in ("reconstructed_representation", "latent_representation")}
        stored = {out: reuse(context, asset_storage, key, "parquet", AssetKey([variant, out]))
                  for out, key in keys.items()}
        if all(v is not None for v in stored.values()):
            for out, value in stored.items():
                yield keyed_output(with_key(value, keys[out]), True, out)
            return
        import numpy as np

        from clustering_dag.core.vae import representations as represent

        recon, latent = represent(trained_vae, raw_dataset, noisy_test_set, variant=variant)
        yield keyed_output(with_key(recon, keys["reconstructed_representation"]), False,
                           "reconstructed_representation", code=cfg.code,
                           test_mean_abs_error=float(np.abs(recon.test_x - raw_dataset.test_x).mean()))
        yield keyed_output(with_key(latent, keys["latent_representation"]), False, "latent_representation",
                           code=cfg.code, latent_dim=cfg.latent_dim, test_code_std=float(latent.test_x.std()))

    return [trained_vae, representations]


vae_assets = [asset_def for variant in VARIANTS for asset_def in build_vae_assets(variant)]
