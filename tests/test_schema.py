"""`esm schema`: draft-07 only, and a description for every field."""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from esm_reconcile.schema import spec_schema

LATER_DRAFT_KEYWORDS = {
    "$defs",
    "$anchor",
    "$dynamicRef",
    "prefixItems",
    "unevaluatedProperties",
    "unevaluatedItems",
    "dependentRequired",
    "dependentSchemas",
}


def walk(node: Any, path: str = "#"):
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{path}/{index}")


def test_schema_is_valid_draft_07() -> None:
    schema = spec_schema()
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)
    text = json.dumps(schema)
    assert "#/$defs/" not in text
    for path, node in walk(schema):
        assert not (LATER_DRAFT_KEYWORDS & set(node)), path
        if "$ref" in node:
            assert set(node) == {"$ref"}, f"{path}: draft-07 ignores siblings of $ref"


def test_every_field_has_a_description() -> None:
    schema = spec_schema()
    for path, node in walk(schema):
        for name, prop in (node.get("properties") or {}).items():
            if isinstance(prop, dict):
                assert prop.get("description"), f"{path}/properties/{name} has no description"


def test_schema_rejects_what_validation_rejects() -> None:
    validator = jsonschema.Draft7Validator(spec_schema())
    bad = {
        "version": 1,
        "functions": {
            "f": [
                {
                    "event_source_arn": "arn:aws:sqs:us-east-1:123456789012:q",
                    "batch_size": 0,
                    "batchsize": 3,
                }
            ]
        },
    }
    assert len(list(validator.iter_errors(bad))) == 2
