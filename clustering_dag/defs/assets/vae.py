"""The autoencoder of each training variant (``paper``, ``elbo``, ``dae``), whose code and
reconstruction are two of the spaces (:mod:`clustering_dag.core.spaces`). It exists once per
variant (``paper/trained_vae``, ``elbo/trained_vae``), from one function."""

from dagster import AssetCheckResult, AssetCheckSeverity, AssetExecutionContext, MetadataValue, Output

from clustering_dag.core.trained import collapse_diagnosis
from clustering_dag.core.variants import VARIANTS, VAEConfig, variant_config
from clustering_dag.defs.assets.common import png_markdown, table_metadata
from clustering_dag.defs.cached import cached_asset, check_per_variant, variant_of
from clustering_dag.defs.config import core_values, dagster_config
from clustering_dag.defs.executors import QUEUE_TAG, VAE_QUEUE
from clustering_dag.defs.resources import Accelerator
from clustering_dag.defs.versioning import unversioned

# The variant fixes the latent code and the training images, and gives the other defaults.
TrainingConfig = dagster_config(
    VAEConfig, "TrainingConfig",
    exclude=("input_dim", "code", "train_on_noisy", "denoising", "deterministic", "image_shape"),
    unset={k: "the variant's" for k in ("hidden", "beta", "likelihood", "epochs", "batch_size",
                                         "kl_warmup", "free_bits")})


def training_inputs(context: AssetExecutionContext) -> list[str]:
    """What a variant's VAE is made from: the images it trains on, noisy or clean (the dataset's
    shape comes with both)."""
    noisy = VARIANTS[variant_of(context)]["train_on_noisy"]
    return ["raw_dataset", "noisy_dataset"] if noisy else ["raw_dataset"]


@cached_asset(
    per_variant=True, group="vae", kind="model", kinds={"tensorflow"}, runs=(Accelerator.select,),
    depends_on=training_inputs,
    # One training at a time per pool slot: `dagster instance concurrency set vae_training 1` keeps
    # a single GPU from being shared by two runs. On the Celery executor it goes to the `vae` queue.
    pool="vae_training", op_tags={QUEUE_TAG: VAE_QUEUE})
def trained_vae(context: AssetExecutionContext, config: TrainingConfig, accelerator: Accelerator,
                raw_dataset, noisy_dataset):
    """The autoencoder trained as its variant says: 'paper' as the authors' code did (no KL, noisy
    targets, clipped BCE, sampled code), 'elbo' as a proper VAE (KL warm-up, a likelihood that
    fits the data, posterior mean), 'dae' as N2D's denoising autoencoder (noisy inputs, clean
    targets, squared error, a linear code)."""
    from clustering_dag.core.spaces import train_autoencoder

    variant = variant_of(context)
    cfg = variant_config(variant, images=raw_dataset.image_shape is not None,  # unset: the variant's
                         **core_values(VAEConfig, config), input_dim=raw_dataset.dim)
    device = accelerator.select(context.log)  # not part of the key: a GPU's model serves a CPU run
    context.log.info(f"training {variant} VAE on {len(raw_dataset.train_x)} rows on {device}: {cfg}")

    def log_epoch(row: dict) -> None:
        context.log.info("epoch {epoch:3d}  loss {loss:.4f}  reconstruction {reconstruction:.4f}  "
                         "KL {kl:.3f}  {seconds:.2f} s  {samples_per_s:,.0f} samples/s".format(**row))

    trained = train_autoencoder(raw_dataset, noisy_dataset, cfg, device=device, log=context.log.info,
                                on_epoch=log_epoch)
    if collapse := collapse_diagnosis(trained):
        context.log.error(f"{variant} VAE on {context.partition_key}: {collapse}")
    return Output(trained, metadata={"variant": variant, **_training_summary(trained)})


@unversioned
def _training_summary(trained) -> dict:
    import pandas as pd

    from clustering_dag.core.figures import loss_curve, to_png

    cfg, final = trained.config, trained.final
    return {"likelihood": cfg.likelihood, "kl_warmup": cfg.kl_warmup, "free_bits": cfg.free_bits,
            "active_latent_dims": trained.diagnostics.get("active_dims", -1), "epochs": cfg.epochs,
            "final_loss": final["loss"], "final_reconstruction": final["reconstruction"],
            "final_kl": final["kl"], "train_seconds": round(trained.seconds, 2),
            "seconds_per_epoch": round(trained.seconds / cfg.epochs, 3),
            "history": table_metadata(pd.DataFrame(trained.history), digits=4),
            "loss_curve": png_markdown(to_png(loss_curve(trained.history)), "loss curve")}


def _latent_code_used(trained_vae) -> AssetCheckResult:
    """At least one latent dimension is active (its posterior mean varies across rows): no
    posterior collapse. Fails with the diagnosis and what to try."""
    collapse, d = collapse_diagnosis(trained_vae), trained_vae.diagnostics
    return AssetCheckResult(
        passed=collapse is None, severity=AssetCheckSeverity.ERROR,
        description=collapse or f"{d.get('active_dims')} of {d.get('latent_dim')} latent dimensions active",
        metadata={"active_latent_dims": d.get("active_dims", -1),
                  "posterior_mean_variance": MetadataValue.json(d.get("mean_variance", [])),
                  "kl_per_dim": MetadataValue.json(d.get("kl_per_dim", []))})


latent_code_used = check_per_variant(_latent_code_used, asset="trained_vae", blocking=True)
