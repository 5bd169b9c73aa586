"""The README keeps up with the code: well-formed tables, every variable, command and sandbox control."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from integration.cli import main
from integration.config import _VARIABLES
from integration_sandbox.billing import create_billing_sandbox
from integration_sandbox.zuora import create_zuora_sandbox

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def cells(row: str) -> list[str]:
    """A Markdown table row's cells (a ``|`` inside backticks does not split)."""
    return re.split(r"\|(?=(?:[^`]*`[^`]*`)*[^`]*$)", row.strip().strip("|"))


def test_every_table_row_has_as_many_cells_as_its_header():
    header = None
    for number, text in enumerate(README.splitlines(), start=1):
        if not text.startswith("|"):
            header = None
            continue
        if header is None:
            header = len(cells(text))
        else:
            assert len(cells(text)) == header, f"README.md line {number}: {text}"


@pytest.mark.parametrize("variable", sorted({*_VARIABLES, "GUNICORN_THREADS", "INTEGRATION_HANDLER_PLUGINS", "PORT"}))
def test_every_variable_has_a_configuration_row(variable):
    assert re.search(rf"^\| `{variable}`", README, re.M) or re.search(rf"^\| [^|]*`{variable}`", README, re.M)


@pytest.mark.parametrize("command", sorted(main.commands))
def test_every_command_is_in_the_commands_table(command):
    assert f"| `integration {command}` |" in README


@pytest.mark.parametrize("option", ["--callout-url", "--callout-username", "--callout-password",
                                    "--billing-webhook-url", "--webhook-secret"])
def test_every_sandbox_option_is_documented(option):
    assert f"`{option}`" in README


def _controls(app) -> list[tuple[str, str]]:
    return sorted((method, rule.rule) for rule in app.url_map.iter_rules() if rule.rule.startswith("/_sandbox")
                  for method in rule.methods - {"HEAD", "OPTIONS"})


@pytest.mark.parametrize("variable, method, rule",
                         [("ZUORA_BASE_URL", m, r) for m, r in _controls(create_zuora_sandbox())]
                         + [("BILLING_BASE_URL", m, r) for m, r in _controls(create_billing_sandbox())])
def test_every_sandbox_control_has_a_curl_example(variable, method, rule):
    path = re.sub(r"<[^>]+>", "[^/\"]+", rule)
    verb = "" if method == "GET" else f"-X {method} "
    example = re.compile(rf'curl -s {re.escape(verb)}"\${variable}{path}"')
    assert example.search(README), f"no curl example for {method} {rule} on ${variable}"
