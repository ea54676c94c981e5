"""Small helpers shared by the asset modules: metadata for figures and tables."""


import base64

from dagster import MetadataValue
from upath import UPath

from clustering_dag.io_managers import atomic_write
from clustering_dag.settings import cache_root


def png_markdown(png: bytes, alt: str = "figure") -> MetadataValue:
    return MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")


def save_figure(png: bytes, parts: list[str], partition: str) -> UPath:
    """Write a PNG atomically to ``<cache>/figures/<parts...>/<partition>.png``."""
    path = UPath(cache_root()).joinpath("figures", *parts, f"{partition}.png")

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(png)

    atomic_write(path, write)
    return path


def figure_metadata(png: bytes, path: UPath, alt: str) -> dict:
    return {"path": MetadataValue.path(str(path)), "size_bytes": len(png),
            "figure": png_markdown(png, alt)}
