"""JSON Schema of the spec format, generated from the pydantic models, in draft-07 terms.

yaml-language-server and most editors read draft-07: so definitions live under `definitions`
(not 2019-09's `$defs`), and a `$ref` never has siblings (draft-07 ignores them, which would hide
the field's description), it is wrapped in `allOf` instead.
"""

from __future__ import annotations

from typing import Any

from .spec import SpecDocument

DRAFT_07 = "http://json-schema.org/draft-07/schema#"


def _draft07(node: Any) -> Any:
    if isinstance(node, list):
        return [_draft07(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _draft07(value) for key, value in node.items()}
    if "$ref" in out and len(out) > 1:
        ref = out.pop("$ref")
        out["allOf"] = [{"$ref": ref}]
    return out


def spec_schema() -> dict[str, Any]:
    schema = SpecDocument.model_json_schema(by_alias=False, ref_template="#/definitions/{model}")
    definitions = schema.pop("$defs", {})
    schema = _draft07(schema)
    schema["definitions"] = _draft07(definitions)
    return {"$schema": DRAFT_07, **schema}
