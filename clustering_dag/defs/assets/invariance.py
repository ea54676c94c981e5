"""The invariance encoder (beyond the paper: SimCLR's objective on an MLP), made from the data
alone, so one asset serves every variant; its code and the UMAP of its code are two shared spaces
of the registry (:mod:`clustering_dag.core.spaces`: ``invariant``, ``invariant_manifold``)."""

from dagster import AssetExecutionContext, Output

from clustering_dag.core.configs import InvarianceConfig
from clustering_dag.defs.assets.common import table_metadata
from clustering_dag.defs.cached import cached_asset
from clustering_dag.defs.config import core_config, dagster_config
from clustering_dag.defs.executors import QUEUE_TAG, VAE_QUEUE
from clustering_dag.defs.resources import Accelerator
from clustering_dag.defs.versioning import unversioned

EncoderConfig = dagster_config(InvarianceConfig, "EncoderConfig", exclude=("input_dim", "image_shape"))


@cached_asset(group="invariance", kind="model", kinds={"tensorflow"}, runs=(Accelerator.select,),
              pool="vae_training", op_tags={QUEUE_TAG: VAE_QUEUE})
def trained_encoder(context: AssetExecutionContext, config: EncoderConfig, accelerator: Accelerator,
                    noisy_dataset):
    """An encoder of the noisy images trained so that two augmented views of one image get the
    same code (NT-Xent); the augmentations are the dataset's kind's (crops, flips and brightness
    for clothes; shifts and small rotations for digits)."""
    from clustering_dag.core.spaces import train_invariance

    def log_epoch(row: dict) -> None:
        context.log.info("epoch {epoch:3d}  loss {loss:.4f}  {seconds:.2f} s  "
                         "{samples_per_s:,.0f} samples/s".format(**row))

    trained = train_invariance(noisy_dataset, core_config(InvarianceConfig, config),
                               device=accelerator.select(context.log), log=context.log.info,
                               on_epoch=log_epoch)
    return Output(trained, metadata=_summary(trained))


@unversioned
def _summary(trained) -> dict:
    import pandas as pd

    cfg = trained.config
    history = pd.DataFrame(trained.history)
    return {"augment": cfg.augment, "epochs": cfg.epochs, "final_loss": trained.final["loss"],
            "train_seconds": round(trained.seconds, 2),
            "seconds_per_epoch": round(trained.seconds / cfg.epochs, 3),
            "history": table_metadata(history, digits=4)}
