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
# Beside the repository, never inside it; VENDOR_SPECS_DIR points elsewhere (e.g. from a git worktree).
VENDOR_SPECS = Path(os.environ.get("VENDOR_SPECS_DIR") or REPO.parent / "shared" / "vendor-specs")
TOGAI_SPEC = VENDOR_SPECS / "togai-openapi.yaml"
MISSING_SPEC = (f"Togai's OpenAPI document is not at {TOGAI_SPEC} (see ../shared/vendor-specs/README.md, or set "
                "VENDOR_SPECS_DIR): the OpenAPI checks were skipped")


def sdk(name: str) -> ModuleType:
    """Import a vendor SDK; skip with a reason when it is not installed, but fail under ``CI=true``
    (CI installs the test extra, so a missing SDK there is a broken install, not a reason to skip)."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"{name} is not installed ({exc}); install with the README's test command",
                    allow_module_level=True)


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


def togai_spec() -> dict | None:
    """Togai's OpenAPI document, or None where it is absent."""
    if not TOGAI_SPEC.is_file():
        return None
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


def merge_all_of(spec: dict) -> dict:
    """The document with each ``allOf`` of object schemas merged into one object schema.

    Togai writes "extends" as ``allOf: [Base, {extra properties}]`` where ``Base`` says
    ``additionalProperties: false`` (e.g. ``CreateAccountRequest`` = ``CreateAccountRequestWithoutCustomerId``
    + ``customerId``). Read literally by JSON Schema no body can pass (``customerId`` is required by one
    member and forbidden by the other); the generated SDK, like every generator, merges the members.
    So does this: properties and required lists united, extra properties forbidden if any member
    forbids them.
    """
    import copy
    spec = copy.deepcopy(spec)

    def merged(schema: dict) -> dict:
        if "allOf" not in schema:
            return schema
        members = [merged(_resolve(spec, m)) for m in schema["allOf"]]
        if not all(m.get("type") == "object" or "properties" in m for m in members):
            return schema
        out: dict = {k: v for k, v in schema.items() if k != "allOf"}
        out["type"] = "object"
        out["properties"] = {k: v for m in members for k, v in m.get("properties", {}).items()}
        out["required"] = sorted({r for m in members for r in m.get("required", [])}) or None
        if out["required"] is None:
            del out["required"]
        if any(m.get("additionalProperties") is False for m in members):
            out["additionalProperties"] = False
        return out

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            node = {k: walk(v) for k, v in node.items()}
            return merged(node) if "allOf" in node else node
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    spec["components"]["schemas"] = walk(spec["components"]["schemas"])
    return spec


class TogaiSpec:
    """Checks JSON bodies against the schemas of Togai's OpenAPI document (OpenAPI 3.0 rules:
    ``nullable``, ``additionalProperties: false``, formats), ``$ref`` s resolved inside the document."""

    def __init__(self, spec: dict):
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT4
        self.spec = spec = merge_all_of(spec)
        self._registry = Registry().with_resource("togai", Resource.from_contents(spec, default_specification=DRAFT4))

    def _errors(self, schema: dict, body: Any) -> list[Any]:
        from openapi_schema_validator import OAS30Validator, oas30_format_checker
        if "$ref" in schema:
            schema = {"$ref": "togai" + schema["$ref"]}
        validator = OAS30Validator(schema, registry=self._registry, format_checker=oas30_format_checker)
        return list(validator.iter_errors(body))

    def errors(self, schema: dict, body: Any) -> list[str]:
        """Readable, for a failing test's report; assert on :meth:`failures` where the kind matters."""
        return [f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}" for e in self._errors(schema, body)]

    def failures(self, schema: dict, body: Any) -> list[tuple[str, str, Any]]:
        """:meth:`errors` by structure, not jsonschema's sentences: ``(path, the JSON Schema keyword that
        failed, what failed it)``, that last the missing names for ``required``, else the value."""
        found: list[tuple[str, str, Any]] = []
        for e in self._errors(schema, body):
            what = (tuple(n for n in e.validator_value if n not in e.instance) if e.validator == "required"
                    else e.instance)
            failure = ("/".join(map(str, e.absolute_path)) or "(body)", e.validator, what)
            if failure not in found:  # jsonschema reports each missing name, each time with the whole list
                found.append(failure)
        return found

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

    def response_failures(self, path: str, method: str, status: int, body: Any) -> list[tuple[str, str, Any]]:
        return self.failures(self.response_schema(path, method, status), body)

    def check_request(self, path: str, method: str, body: Any) -> list[str]:
        return self.errors(self.request_schema(path, method), body)


def problems(model: type, body: Any, missing_is_fine: str | None = None) -> list[str]:
    """What keeps ``body`` from being a ``model`` as the vendor documents it: fields the schema lacks
    (:func:`undocumented`) and values of the wrong type. The SDKs themselves build models without
    validation (pydantic ``construct``), so this validates explicitly, with the SDK's own strict types.
    A field named ``missing_is_fine`` may be absent anywhere (pydantic's error type ``missing``, not its words)."""
    from pydantic import ValidationError
    found = [f"undocumented field {path}" for path in undocumented(model, body)]
    try:
        model.model_validate(body)
    except ValidationError as exc:
        found.extend(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
                     if not (e["type"] == "missing" and e["loc"] and e["loc"][-1] == missing_is_fine))
    return found


class OpenAPIChecks:
    """The OpenAPI half of a conformance test. Where the document is absent, the checks return no
    errors and :meth:`finish` (called at the end of the test, after the SDK checks ran) skips with
    the reason; :meth:`require` skips at once, for tests that are only about the document."""

    def __init__(self, document: dict | None):
        self.spec = TogaiSpec(document) if document is not None else None

    def require(self) -> TogaiSpec:
        if self.spec is None:
            pytest.skip(MISSING_SPEC)
        return self.spec

    def response(self, path: str, method: str, status: int, body: Any) -> list[str]:
        return self.spec.check_response(path, method, status, body) if self.spec else []

    def request(self, path: str, method: str, body: Any) -> list[str]:
        return self.spec.check_request(path, method, body) if self.spec else []

    def finish(self) -> None:
        if self.spec is None:
            pytest.skip(MISSING_SPEC + " (the SDK checks of this test ran and passed)")
