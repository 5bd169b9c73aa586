"""HTTP errors the service answers outside its own handlers carry the project's codes and sentences.

The codes are what clients and their tooling match on; they come from ``integration.web.errors.HTTP_ERRORS``,
never from the web framework's exception names or descriptions.
"""
from __future__ import annotations

import pytest

from integration.web.errors import HTTP_ERRORS, http_error_body
from tests.conftest import ADMIN_TOKEN

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.mark.parametrize("method, path, kwargs, status", [
    ("get", "/admin/no-such-thing", {"headers": AUTH}, 404),
    ("put", "/healthz", {}, 405),
    ("post", "/admin/sync", {"headers": AUTH, "data": b"x" * (65 * 1024), "content_type": "application/json"}, 413),
])
def test_an_error_outside_the_handlers_answers_the_projects_code_and_sentence(client, method, path, kwargs, status):
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status
    code, detail = HTTP_ERRORS[status]
    assert response.get_json() == {"error": code, "detail": detail}


def test_a_status_the_table_does_not_list_still_gets_a_code_of_the_project():
    assert http_error_body(418) == ("http_418", "the request was answered 418")
    assert all(code.isidentifier() and detail for code, detail in HTTP_ERRORS.values())
