"""schema/esm-spec.schema.json is exactly what `esm schema` prints, so the file that
mappings.example.yaml names (`# yaml-language-server: $schema=./schema/esm-spec.schema.json`),
and a raw URL to it, describe the spec format of this checkout."""

from __future__ import annotations

import json

import jsonschema
import yaml

from tests.cli_runner import run_esm
from tests.conftest import REPO_ROOT

SCHEMA_FILE = REPO_ROOT / "schema" / "esm-spec.schema.json"
REGENERATE = "esm schema > schema/esm-spec.schema.json  (from the repository root)"


def test_committed_schema_is_what_esm_schema_prints() -> None:
    printed = run_esm("schema")
    assert printed.code == 0, printed.err
    assert SCHEMA_FILE.is_file(), f"{SCHEMA_FILE} is missing; generate it with: {REGENERATE}"
    stale = SCHEMA_FILE.read_text(encoding="utf-8") != printed.out
    assert not stale, f"{SCHEMA_FILE.name} is stale; regenerate it with: {REGENERATE}"


def test_example_names_the_committed_schema_and_meets_it() -> None:
    example = REPO_ROOT / "mappings.example.yaml"
    first_line = example.read_text(encoding="utf-8").splitlines()[0]
    assert first_line == "# yaml-language-server: $schema=./schema/esm-spec.schema.json"
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator(schema).validate(yaml.safe_load(example.read_text()))
