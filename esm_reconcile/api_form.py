"""Settings in spec form (snake_case, as the spec writes them) and in API form (PascalCase, as
Lambda's API names them): converting between the two, and the paths of every spec-form field.

Each field's `serialization_alias` is its CreateEventSourceMapping parameter name.
"""

from __future__ import annotations

import functools
from typing import Any

from .mapping_settings import MappingSettings
from .spec_fields import ApiModel


def _submodel(annotation: Any) -> type[ApiModel] | None:
    """The ApiModel inside an annotation like `X | None` or `list[X] | None`, if any."""
    if isinstance(annotation, type) and issubclass(annotation, ApiModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _submodel(arg)
        if found is not None:
            return found
    return None


def _convert(model: type[ApiModel], data: Any, to_api: bool) -> Any:
    if isinstance(data, list):
        return [_convert(model, item, to_api) for item in data]
    if not isinstance(data, dict):
        return data
    out: dict[str, Any] = {}
    by_api = {f.serialization_alias: name for name, f in model.model_fields.items()}
    for key, value in data.items():
        name = key if to_api else by_api.get(key)
        if name is None or name not in model.model_fields:
            continue  # read-back keys the spec has no field for (output-only)
        field = model.model_fields[name]
        sub = _submodel(field.annotation)
        converted = _convert(sub, value, to_api) if sub is not None else value
        out[(field.serialization_alias or name) if to_api else name] = converted
    return out


def to_api(settings: dict[str, Any]) -> dict[str, Any]:
    """Spec-form settings (snake_case, nested) → CreateEventSourceMapping parameters."""
    return _convert(MappingSettings, settings, to_api=True)


def from_api(response: dict[str, Any]) -> dict[str, Any]:
    """A Get/List mapping → spec-form settings (keys the spec cannot express are dropped)."""
    return _convert(MappingSettings, response, to_api=False)


SETTING_FIELDS: tuple[str, ...] = tuple(MappingSettings.model_fields)


@functools.cache
def field_paths(model: type[ApiModel] = MappingSettings, prefix: str = "") -> list[str]:
    """Every field path in spec form: top-level names and dotted nested ones."""
    paths: list[str] = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        paths.append(path)
        sub = _submodel(field.annotation)
        if sub is not None and not _is_list(field.annotation):
            paths.extend(field_paths(sub, path + "."))
    return paths


def _is_list(annotation: Any) -> bool:
    if getattr(annotation, "__origin__", None) is list:
        return True
    return any(_is_list(a) for a in getattr(annotation, "__args__", ()) or ())
