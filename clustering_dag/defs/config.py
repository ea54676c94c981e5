"""A stage's Dagster config is its core config: the fields of the core's dataclass (names,
defaults, descriptions) as a :class:`dagster.Config`, declared nowhere else. Values are checked
once, by the core class, when the step builds it from the run's config."""

import dataclasses
import typing

import pydantic
from dagster import Config


def dagster_config(core: type, name: str, *, exclude: tuple[str, ...] = (), defaults: dict | None = None,
                   unset: dict[str, str] | None = None) -> type[Config]:
    """The run config of a stage whose settings are the dataclass ``core``.

    ``exclude``: fields the pipeline sets itself; ``defaults``: other defaults in this stage;
    ``unset``: fields that may be left as None, meaning what the text says (e.g. "the variant's").
    Tuples become lists (what run config holds).
    """
    hints = typing.get_type_hints(core)
    fields = {}
    for spec in dataclasses.fields(core):
        if spec.name in exclude:
            continue
        kind, default = hints[spec.name], (defaults or {}).get(spec.name, spec.default)
        if typing.get_origin(kind) is tuple:
            kind, default = list[typing.get_args(kind)[0]], list(default)
        description = spec.metadata.get("description")
        if unset and spec.name in unset:
            kind, default = kind | None, None
            description = f"{description or ''} None = {unset[spec.name]}.".strip()
        fields[spec.name] = (kind, pydantic.Field(default=default, description=description))
    return pydantic.create_model(name, __base__=Config, __doc__=core.__doc__, **fields)


def core_values(core: type, config: Config) -> dict:
    """A run's Dagster config as ``core``'s keyword arguments: the values set (None: left to the
    core's default or to the step), run config's lists back as the core's tuples."""
    values = {k: v for k, v in config.model_dump().items() if v is not None}
    hints = typing.get_type_hints(core)
    for k, v in values.items():
        if typing.get_origin(hints.get(k)) is tuple:
            values[k] = tuple(v)
    return values


def core_config(core: type, config: Config, **resolved):
    """The core config of a run: its Dagster config's values, with ``resolved`` (what the step
    decided) on top; validated by ``core``."""
    return core(**{**core_values(core, config), **resolved})
