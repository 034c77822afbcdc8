"""report.json's JSON Schema, as shipped in the package, and a check the tests run on every report they meet."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator


@lru_cache(maxsize=1)
def validator() -> Draft202012Validator:
    schema = json.loads(resources.files("wpgate.report").joinpath("report.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def problems(report: Any) -> list[str]:
    """Every way `report` breaks the schema, each with where (an empty list: it holds)."""
    return [f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
            for error in validator().iter_errors(report)]


def assert_valid_report(report: Any) -> None:
    found = problems(report)
    assert not found, found
