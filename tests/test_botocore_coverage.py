"""The spec models cover exactly the installed botocore's CreateEventSourceMapping input.

SPEC.md: "Every parameter of CreateEventSourceMapping in the installed botocore is expressible;
`FunctionName` is the key under `functions`." The comparison below is generic: it walks the
botocore input shape recursively and the pydantic models (through their `serialization_alias`),
so a member added by a future botocore, or a changed range, length limit or enum, fails a test.
The self-tests at the bottom prove that each kind of difference is caught.
"""

from __future__ import annotations

import types
from datetime import datetime
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import botocore.session
import pytest
from botocore.model import ShapeResolver
from pydantic import Field
from pydantic.fields import FieldInfo

from esm_reconcile.spec import ApiModel, MappingSettings

# Members of the botocore input that the models deliberately do not have.
NOT_IN_MODEL = frozenset({"FunctionName"})  # the key under `functions`


# -- the comparison --------------------------------------------------------------------------------


def _alternatives(annotation: Any, metadata: list[Any]) -> list[tuple[Any, list[Any]]]:
    """The non-None alternatives of an annotation, each with the constraints that apply to it."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *extras = get_args(annotation)
        meta = list(metadata)
        for extra in extras:
            meta.extend(extra.metadata if isinstance(extra, FieldInfo) else [extra])
        return _alternatives(base, meta)
    if origin in (Union, types.UnionType):
        out: list[tuple[Any, list[Any]]] = []
        for arg in get_args(annotation):
            if arg is not type(None):
                out.extend(_alternatives(arg, metadata))
        return out
    return [(annotation, list(metadata))]


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, ApiModel)


def _matches(type_name: str, tp: Any) -> bool:
    origin = get_origin(tp)
    if type_name == "structure":
        return _is_model(tp)
    if type_name == "list":
        return tp is list or origin is list
    if type_name == "map":
        return tp is dict or origin is dict
    if type_name == "string":
        return tp is str or (origin is Literal and all(isinstance(a, str) for a in get_args(tp)))
    if type_name in ("integer", "long"):
        return tp is int
    if type_name == "boolean":
        return tp is bool
    if type_name == "timestamp":
        return tp is datetime
    if type_name in ("float", "double"):
        return tp is float
    return False


def _bound(meta: list[Any], *attrs: str) -> int | None:
    found = None
    for item in meta:
        for attr in attrs:
            value = getattr(item, attr, None)
            if value is not None:
                found = value
    return found


def _length_bounds(meta: list[Any]) -> tuple[int | None, int | None]:
    low = _bound(meta, "min_length")
    # A length is never negative: a minimum of 0 says nothing.
    return (low or None), _bound(meta, "max_length")


def _botocore_length_bounds(shape: Any) -> tuple[int | None, int | None]:
    return (shape.metadata.get("min") or None), shape.metadata.get("max")


def _join(path: str, member: str) -> str:
    return f"{path}.{member}" if path else member


def _compare_value(
    shape: Any, annotation: Any, metadata: list[Any], path: str, out: dict[str, list[str]]
) -> None:
    problems = out.setdefault(path, [])
    kind = shape.type_name
    candidates = [
        (tp, meta) for tp, meta in _alternatives(annotation, metadata) if _matches(kind, tp)
    ]
    if len(candidates) != 1:
        problems.append(
            f"botocore type {kind!r} ({shape.name}) has "
            f"{'no' if not candidates else 'more than one'} matching model type in {annotation!r}"
        )
        return
    tp, meta = candidates[0]

    if kind in ("integer", "long"):
        want = (shape.metadata.get("min"), shape.metadata.get("max"))
        have = (_bound(meta, "ge"), _bound(meta, "le"))
        if _bound(meta, "gt", "lt") is not None:
            problems.append("model uses gt/lt; botocore ranges are inclusive (use ge/le)")
        if want != have:
            problems.append(f"integer range: botocore min/max {want}, model ge/le {have}")
    elif kind in ("string", "list", "map"):
        want = _botocore_length_bounds(shape)
        have = _length_bounds(meta)
        if want != have:
            problems.append(f"{kind} length: botocore min/max {want}, model min/max {have}")

    if kind == "string":
        botocore_enum = sorted(shape.enum) if shape.enum else None
        model_enum = sorted(get_args(tp)) if get_origin(tp) is Literal else None
        if botocore_enum != model_enum:
            problems.append(f"enum: botocore {botocore_enum}, model Literal {model_enum}")
    elif kind == "structure":
        _compare_structure(shape, tp, path, out)
    elif kind == "list":
        (item,) = get_args(tp) or (Any,)
        _compare_value(shape.member, item, [], f"{path}[]", out)
    elif kind == "map":
        key, value = get_args(tp) or (Any, Any)
        _compare_value(shape.key, key, [], f"{path}{{key}}", out)
        _compare_value(shape.value, value, [], f"{path}{{value}}", out)


def _compare_structure(
    shape: Any, model: type[ApiModel], path: str, out: dict[str, list[str]], skip=frozenset()
) -> None:
    by_alias: dict[str, FieldInfo] = {}
    for name, info in model.model_fields.items():
        alias = info.serialization_alias
        if alias is None:
            out.setdefault(_join(path, name), []).append(
                f"{model.__name__}.{name} has no serialization_alias (botocore member name)"
            )
            continue
        by_alias[alias] = info
        if alias not in shape.members:
            out.setdefault(_join(path, alias), []).append(
                f"{model.__name__}.{name} ({alias}) is not a member of botocore {shape.name}"
            )
    for member, member_shape in shape.members.items():
        if member in skip:
            continue
        member_path = _join(path, member)
        info = by_alias.get(member)
        if info is None:
            out.setdefault(member_path, []).append(
                f"botocore {shape.name}.{member} has no field in {model.__name__}"
            )
            continue
        _compare_value(member_shape, info.annotation, list(info.metadata), member_path, out)


def compare(shape: Any, model: type[ApiModel], skip=frozenset()) -> dict[str, list[str]]:
    """Every member path of either side → the differences found there (empty when equal)."""
    out: dict[str, list[str]] = {}
    _compare_structure(shape, model, "", out, skip)
    return out


# -- the installed botocore against spec.py --------------------------------------------------------


def _input_shape() -> Any:
    service = botocore.session.get_session().get_service_model("lambda")
    return service.operation_model("CreateEventSourceMapping").input_shape


RESULTS = compare(_input_shape(), MappingSettings, skip=NOT_IN_MODEL)

# Differences found with botocore 1.43.11 that need a change in spec.py (reported to the lead).
# strict: once spec.py is fixed the test passes, XPASS fails, and the entry must go.
# Deliberate differences from botocore, each with its reason. Empty: the models match.
KNOWN_MISMATCHES: dict[str, str] = {}


def _params() -> list[Any]:
    params = []
    for path in sorted(RESULTS):
        marks = ()
        if path in KNOWN_MISMATCHES:
            marks = pytest.mark.xfail(strict=True, reason=KNOWN_MISMATCHES[path])
        params.append(pytest.param(path, id=path, marks=marks))
    return params


@pytest.mark.parametrize("path", _params())
def test_member_matches_botocore(path: str) -> None:
    assert RESULTS[path] == [], f"{path}: " + "; ".join(RESULTS[path])


def test_every_known_mismatch_is_a_real_path() -> None:
    assert set(KNOWN_MISMATCHES) <= set(RESULTS)


def test_walk_reaches_every_top_level_member() -> None:
    members = set(_input_shape().members) - NOT_IN_MODEL
    assert members <= set(RESULTS)
    assert len(members) == len(MappingSettings.model_fields)
    # and the nested ones (one example per container kind)
    assert "DestinationConfig.OnFailure.Destination" in RESULTS
    assert "SelfManagedEventSource.Endpoints{value}[]" in RESULTS
    assert "SourceAccessConfigurations[].Type" in RESULTS


def test_function_name_is_the_only_exception() -> None:
    shape = _input_shape()
    assert "FunctionName" in shape.members
    assert "function_name" not in MappingSettings.model_fields
    assert set(shape.required_members) <= NOT_IN_MODEL


def test_every_model_field_has_a_botocore_alias() -> None:
    assert all(f.serialization_alias for f in MappingSettings.model_fields.values())


# -- self-tests: each kind of difference is detected -----------------------------------------------

_SHAPES = {
    "Input": {
        "type": "structure",
        "required": ["FunctionName"],
        "members": {
            "FunctionName": {"shape": "Str"},
            "BatchSize": {"shape": "BatchSize"},
            "Position": {"shape": "Position"},
            "Name": {"shape": "Name"},
            "Items": {"shape": "Items"},
            "Nested": {"shape": "Nested"},
            "When": {"shape": "When"},
            "On": {"shape": "Bool"},
            "Labels": {"shape": "Labels"},
        },
    },
    "Str": {"type": "string"},
    "BatchSize": {"type": "integer", "min": 1, "max": 100},
    "Position": {"type": "string", "enum": ["A", "B"]},
    "Name": {"type": "string", "min": 1, "max": 64},
    "Items": {"type": "list", "member": {"shape": "Str"}, "min": 0, "max": 3},
    "Nested": {"type": "structure", "members": {"Size": {"shape": "Size"}}},
    "Size": {"type": "integer", "min": 2, "max": 10},
    "When": {"type": "timestamp"},
    "Bool": {"type": "boolean"},
    "Labels": {"type": "map", "key": {"shape": "Str"}, "value": {"shape": "Str"}},
}


def _shape(changes: dict[str, Any] | None = None, drop: str | None = None) -> Any:
    shapes = {k: {**v} for k, v in _SHAPES.items()}
    shapes["Input"]["members"] = dict(shapes["Input"]["members"])
    for name, patch in (changes or {}).items():
        if name.startswith("+"):  # a new member of Input
            shapes["Input"]["members"][name[1:]] = patch
        else:
            shapes[name] = {**shapes.get(name, {}), **patch}
    if drop:
        del shapes["Input"]["members"][drop]
    return ShapeResolver(shapes).get_shape_by_name("Input")


def _api(alias: str, **kwargs: Any) -> Any:
    return Field(None, serialization_alias=alias, **kwargs)


class _Nested(ApiModel):
    size: int | None = _api("Size", ge=2, le=10)


class _Model(ApiModel):
    batch_size: int | None = _api("BatchSize", ge=1, le=100)
    position: Literal["A", "B"] | None = _api("Position")
    name: str | None = _api("Name", min_length=1, max_length=64)
    items: list[str] | None = _api("Items", max_length=3)
    nested: _Nested | None = _api("Nested")
    when: datetime | None = _api("When")
    on: bool | None = _api("On")
    labels: dict[str, str] | None = _api("Labels")


def _problems(shape: Any, model: type[ApiModel] = _Model) -> dict[str, list[str]]:
    return {k: v for k, v in compare(shape, model, skip=NOT_IN_MODEL).items() if v}


def test_selftest_equal_shapes_pass() -> None:
    assert _problems(_shape()) == {}


def test_selftest_new_botocore_member_fails() -> None:
    found = _problems(_shape({"+ShinyNewThing": {"shape": "Bool"}}))
    assert list(found) == ["ShinyNewThing"]
    assert "no field" in found["ShinyNewThing"][0]


def test_selftest_new_nested_botocore_member_fails() -> None:
    found = _problems(
        _shape({"Nested": {"members": {"Size": {"shape": "Size"}, "X": {"shape": "Str"}}}})
    )
    assert list(found) == ["Nested.X"]


def test_selftest_model_member_missing_in_botocore_fails() -> None:
    found = _problems(_shape(drop="Labels"))
    assert list(found) == ["Labels"]
    assert "not a member of botocore" in found["Labels"][0]


def test_selftest_function_name_only_skipped_when_asked() -> None:
    assert "FunctionName" in {
        k for k, v in compare(_shape(), _Model).items() if v
    }  # without the exception it would be a missing member


@pytest.mark.parametrize(
    ("patch", "path", "words"),
    [
        ({"BatchSize": {"max": 1000}}, "BatchSize", "integer range"),
        ({"BatchSize": {"min": 0}}, "BatchSize", "integer range"),
        ({"Size": {"max": 11}}, "Nested.Size", "integer range"),
        ({"Name": {"max": 63}}, "Name", "string length"),
        ({"Name": {"min": 2}}, "Name", "string length"),
        ({"Items": {"max": 4}}, "Items", "list length"),
        ({"Items": {"min": 1}}, "Items", "list length"),
        ({"Labels": {"max": 50}}, "Labels", "map length"),
        ({"Position": {"enum": ["A", "B", "C"]}}, "Position", "enum"),
        ({"Position": {"enum": ["A"]}}, "Position", "enum"),
        ({"Name": {"enum": ["x"]}}, "Name", "enum"),
        ({"Position": {"type": "integer"}}, "Position", "no matching model type"),
        ({"When": {"type": "string"}}, "When", "no matching model type"),
        ({"Items": {"member": {"shape": "BatchSize"}}}, "Items[]", "no matching model type"),
    ],
)
def test_selftest_constraint_differences_fail(patch: dict, path: str, words: str) -> None:
    found = _problems(_shape(patch))
    assert list(found) == [path]
    assert words in found[path][0]


def test_selftest_model_only_constraint_fails() -> None:
    class Stricter(_Model):
        on: bool | None = _api("On")
        items: list[str] | None = _api("Items", max_length=2)

    found = _problems(_shape(), Stricter)
    assert list(found) == ["Items"]


def test_selftest_missing_alias_fails() -> None:
    class NoAlias(_Model):
        extra: int | None = None

    found = _problems(_shape(), NoAlias)
    assert list(found) == ["extra"]
    assert "serialization_alias" in found["extra"][0]
