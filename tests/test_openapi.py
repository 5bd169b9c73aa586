"""/openapi.json: generated from the schemas, valid, and covering every route of the app."""
import re

from openapi_spec_validator import validate

from integration.web.openapi import build_spec

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def flask_routes(app):
    """(OpenAPI-style path, method) of every route the app serves, the HTML console aside (it is
    browser pages, not the API; tests/test_console.py covers it)."""
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.rule.startswith("/console/"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        routes |= {(path, method.lower()) for method in rule.methods - IGNORED_METHODS}
    return routes


def documented_routes(document):
    return {(path, method) for path, operations in document["paths"].items() for method in operations}


def test_served_document_is_valid_openapi(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    document = response.get_json()
    validate(document)  # raises on any violation
    assert document["openapi"].startswith("3.0")
    assert document == build_spec()


def test_every_route_is_documented_and_nothing_else(app, client):
    document = client.get("/openapi.json").get_json()
    routes = flask_routes(app)
    assert len(routes) >= 14  # webhooks, admin, ops: guards against an empty url_map passing
    assert routes == documented_routes(document)


def test_admin_operations_require_the_bearer_scheme_and_document_401(client):
    document = client.get("/openapi.json").get_json()
    assert document["components"]["securitySchemes"]["adminToken"] == {
        "type": "http", "scheme": "bearer", "description": "`Authorization: Bearer $ADMIN_TOKEN`"}
    admin = [(p, m, op) for p, ops in document["paths"].items() if p.startswith("/admin/") for m, op in ops.items()]
    # 8, plus GET /admin/events, DELETE /admin/meters/{id}, POST /admin/links, GET /admin/reports/totals
    assert len(admin) == 12
    for path, method, operation in admin:
        assert operation["security"] == [{"adminToken": []}], (path, method)
        assert operation["responses"]["401"] == {"$ref": "#/components/responses/Unauthorized"}, (path, method)
    for path, operations in document["paths"].items():
        if not path.startswith("/admin/"):
            for operation in operations.values():
                assert {"adminToken": []} not in operation.get("security", []), path


def test_errors_use_the_error_schema(client):
    document = client.get("/openapi.json").get_json()
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    assert set(error["properties"]) == {"error", "reason", "detail"}
    ref = {"$ref": "#/components/schemas/Error"}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400 and "$ref" not in response:
                    assert response["content"]["application/json"]["schema"] == ref, (path, method, status)


def test_schemas_come_from_marshmallow(client):
    document = client.get("/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    assert set(schemas["Failure"]["properties"]) == {"id", "object_type", "object_id", "source", "code", "message",
                                                     "attempts", "first_failed_at", "last_failed_at"}
    assert schemas["SyncResult"]["properties"]["status"]["enum"] == ["queued", "already_in_progress"]
    assert schemas["MeterSettingsInput"]["properties"]["mode"]["enum"] == ["quantity", "revenue"]
    assert schemas["FailureSelector"]["properties"]["ids"]["maxItems"] == 1000
    sync = document["paths"]["/admin/sync"]["post"]
    assert sync["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/SyncRequest"}
    assert sync["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SyncResponse"}
    limit = next(p for p in document["paths"]["/admin/failures"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"] == {"type": "integer", "default": 100, "minimum": 1, "maximum": 500}
