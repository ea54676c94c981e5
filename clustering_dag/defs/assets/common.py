"""What the assets show in the UI besides their values: tables and images as Dagster metadata.

Nothing heavy is imported here: the numeric libraries load inside the steps that use them.
"""

import base64

from dagster import MetadataValue

from clustering_dag.defs.versioning import unversioned


@unversioned
def table_metadata(frame, digits: int = 3) -> MetadataValue:
    """A DataFrame as Dagster's table metadata: typed columns, floats rounded, so the UI shows a
    readable table (markdown tables get clipped there)."""
    import numpy as np
    from dagster import TableColumn, TableRecord, TableSchema
    from pandas.api import types as pdt

    def kind(dtype) -> str:
        return ("bool" if pdt.is_bool_dtype(dtype) else "int" if pdt.is_integer_dtype(dtype)
                else "float" if pdt.is_float_dtype(dtype) else "string")

    types = {c: kind(frame[c].dtype) for c in frame.columns}

    def cell(value, column):
        if types[column] == "float":
            return None if not np.isfinite(value) else round(float(value), digits)
        return {"int": int, "bool": bool}.get(types[column], str)(value)

    return MetadataValue.table(
        records=[TableRecord({c: cell(v, c) for c, v in row.items()}) for row in frame.to_dict("records")],
        schema=TableSchema(columns=[TableColumn(c, t) for c, t in types.items()]))


@unversioned
def png_markdown(png: bytes, alt: str = "figure") -> MetadataValue:
    return MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")


@unversioned
def image_metadata(rows: list, titles: list[str], image_shape) -> MetadataValue:
    """Rows of images (e.g. a few test samples) as an inline PNG."""
    from clustering_dag.core.figures import image_rows, to_png

    return png_markdown(to_png(image_rows(rows, titles, image_shape)))
