"""Shared pieces of the conformance suite: the vendors' SDKs (skipped with a reason where absent, but
never under ``CI=true``), Togai's published OpenAPI document (read from ``../shared/vendor-specs/``
beside the repository, skipped with a reason where absent), and a check that a response carries
no key the vendor's schema lacks.

WHY: the sandboxes are how every flow is tested; when the same hands write a sandbox and the flow it
tests, one misreading of the API passes both. The vendors' own SDK models and OpenAPI document are
an outside reading of the same API.
"""
from __future__ import annotations

import importlib
import os
import typing
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
VENDOR_SPECS = REPO.parent / "shared" / "vendor-specs"
TOGAI_SPEC = VENDOR_SPECS / "togai-openapi.yaml"


def sdk(name: str) -> ModuleType:
    """Import a vendor SDK; skip with a reason when it is not installed, but fail under ``CI=true``
    (CI installs the test extra, so a missing SDK there is a broken install, not a reason to skip)."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"{name} is not installed ({exc}); install the test extra: pip install -e '.[test]'")


def _model_in(annotation: Any) -> type | None:
    """The pydantic model inside ``Optional[List[Model]]`` and the like, if any."""
    from pydantic import BaseModel
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def undocumented(model: type, data: Any, path: str = "") -> list[str]:
    """Every key in ``data`` (recursively) that ``model``'s schema does not define. Custom fields
    (``*__c``) are tenant-defined, so they are allowed anywhere an object is."""
    if isinstance(data, list):
        return [k for i, item in enumerate(data) for k in undocumented(model, item, f"{path}[{i}]")]
    if not isinstance(data, dict):
        return []
    fields = {(f.alias or name): f for name, f in model.model_fields.items() if name != "additional_properties"}
    found = []
    for key, value in data.items():
        if key.endswith("__c"):
            continue
        if key not in fields:
            found.append(f"{path}{key}")
            continue
        inner = _model_in(fields[key].annotation)
        if inner is not None:
            found.extend(undocumented(inner, value, f"{path}{key}."))
    return found


def togai_spec() -> dict:
    """Togai's OpenAPI document, or a skip naming where it was looked for."""
    if not TOGAI_SPEC.is_file():
        pytest.skip(f"Togai's OpenAPI document is not at {TOGAI_SPEC} (see ../shared/vendor-specs/README.md); "
                    "the OpenAPI part of the conformance suite needs it")
    import yaml
    return yaml.safe_load(TOGAI_SPEC.read_text(encoding="utf-8"))



def _resolve(spec: dict, node: dict) -> dict:
    """Follow local ``$ref`` s (``#/components/...``) to the node they name."""
    while "$ref" in node:
        node_path = node["$ref"].removeprefix("#/").split("/")
        node = spec
        for part in node_path:
            node = node[part]
    return node


class TogaiSpec:
    """Checks JSON bodies against the schemas of Togai's OpenAPI document (OpenAPI 3.0 rules:
    ``nullable``, ``additionalProperties: false``, formats), ``$ref`` s resolved inside the document."""

    def __init__(self, spec: dict):
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT4
        self.spec = spec
        self._registry = Registry().with_resource("togai", Resource.from_contents(spec, default_specification=DRAFT4))

    def errors(self, schema: dict, body: Any) -> list[str]:
        from openapi_schema_validator import OAS30Validator, oas30_format_checker
        if "$ref" in schema:
            schema = {"$ref": "togai" + schema["$ref"]}
        validator = OAS30Validator(schema, registry=self._registry, format_checker=oas30_format_checker)
        return [f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}" for e in validator.iter_errors(body)]

    def component(self, name: str) -> dict:
        return {"$ref": f"#/components/schemas/{name}"}

    def operation(self, path: str, method: str) -> dict:
        return self.spec["paths"][path][method]

    def request_schema(self, path: str, method: str) -> dict:
        body = _resolve(self.spec, self.operation(path, method)["requestBody"])
        return body["content"]["application/json"]["schema"]

    def response_schema(self, path: str, method: str, status: int) -> dict:
        response = _resolve(self.spec, self.operation(path, method)["responses"][str(status)])
        return response["content"]["application/json"]["schema"]

    def example(self, name: str) -> Any:
        return self.spec["components"]["examples"][name]["value"]

    def check_response(self, path: str, method: str, status: int, body: Any) -> list[str]:
        return self.errors(self.response_schema(path, method, status), body)

    def check_request(self, path: str, method: str, body: Any) -> list[str]:
        return self.errors(self.request_schema(path, method), body)


def problems(model: type, body: Any) -> list[str]:
    """What keeps ``body`` from being a ``model`` as the vendor documents it: fields the schema lacks
    (:func:`undocumented`) and values of the wrong type. The SDKs themselves build models without
    validation (pydantic ``construct``), so this validates explicitly, with the SDK's own strict types."""
    from pydantic import ValidationError
    found = [f"undocumented field {path}" for path in undocumented(model, body)]
    try:
        model.model_validate(body)
    except ValidationError as exc:
        found.extend(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return found
