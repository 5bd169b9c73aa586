"""The docs keep up with the code, both ways.

What exists must be documented where its page says it is: every command and every option of the
click tree (docs/commands.md), every environment variable the code reads (docs/configuration.md),
every HTTP route (docs/admin-api.md) and every sandbox control (docs/sandboxes.md), each with a
``curl`` example. What the docs name must exist: commands, options, variables, routes, controls,
source paths and links. The README keeps the two set-up commands CI runs as its first lines.

Facts come from the code itself (the click tree, an ``ast`` walk of ``integration/``, the Flask URL
maps), so a new option or variable added anywhere fails here until it is written down.
"""
from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from integration import create_app
from integration.cli import main
from integration.config import _VARIABLES
from integration.domain.errors import FAILURE_CODES
from integration.web.front_door import REFUSAL_CODES
from integration_sandbox.billing import create_billing_sandbox
from integration_sandbox.billing.invoices import SHAPES
from integration_sandbox.zuora import create_zuora_sandbox
from tests.doc_parsing import (
    cells,
    code_blocks,
    code_spans,
    curl_calls,
    environment_reads,
    headings,
    matches,
    prose,
    section,
    shell_commands,
    slug,
    table_rows,
)

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
README = ROOT / "README.md"


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def page(name: str) -> str:
    return read(DOCS / name)


ALL_TEXTS = {path.relative_to(ROOT).as_posix(): read(path) for path in [README, *PAGES]}


# -- the README -------------------------------------------------------------------------------------------

# Each installs the exact versions of its lock (hash-checked), then the project itself without touching them.
INSTALL = ("python3 -m venv .venv && .venv/bin/pip install -q --require-hashes -r {lock} && "
           ".venv/bin/pip install -q --no-deps --no-build-isolation -e . && ")
SETUP = ["`" + INSTALL.format(lock="requirements.lock") + ".venv/bin/integration demo`",
         "`" + INSTALL.format(lock="requirements-test.lock") + ".venv/bin/python -m pytest -n 2`"]


def test_readme_starts_with_the_two_setup_commands_ci_runs():
    first = [line for line in read(README).splitlines() if line.strip()][:2]
    assert first == SETUP
    assert SETUP[1].strip("`") in read(ROOT / ".ci" / "run"), "CI must run exactly the README's test command"


def test_readme_quick_start_runs_sandbox_source_migrate_check_serve_in_ten_lines():
    block = code_blocks(section(read(README), "Quick start"))[0]
    assert len(block.splitlines()) <= 10
    steps = [block.index(step) for step in ("integration sandbox", "source sandbox.env", "integration migrate",
                                            "integration check", "integration serve")]
    assert steps == sorted(steps)


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_every_page_is_linked_from_the_index_and_the_readme(path):
    if path.name != "index.md":
        assert f"]({path.name})" in page("index.md"), f"docs/index.md does not link {path.name}"
    assert f"](docs/{path.name})" in read(README), f"README.md does not link docs/{path.name}"


# -- tables and links ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(ALL_TEXTS))
def test_every_table_row_has_as_many_cells_as_its_header(name):
    header = None
    for number, text in enumerate(ALL_TEXTS[name].splitlines(), start=1):
        if not text.startswith("|"):
            header = None
            continue
        if header is None:
            header = len(cells(text))
        else:
            assert len(cells(text)) == header, f"{name} line {number}: {text}"


@pytest.mark.parametrize("name", sorted(ALL_TEXTS))
def test_every_relative_link_and_anchor_resolves(name):
    here = (ROOT / name).parent
    for target in re.findall(r"\]\(([^)\s]+)\)", prose(ALL_TEXTS[name])):
        if re.match(r"^[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        path = (here / file).resolve() if file else ROOT / name
        assert path.exists(), f"{name}: link to missing {target}"
        if anchor:
            assert anchor in {slug(title) for _, title in headings(read(path))}, f"{name}: no anchor {target}"


@pytest.mark.parametrize("name", sorted(ALL_TEXTS))
def test_every_source_path_named_exists(name):
    for path in set(re.findall(r"(?<![\w/.-])((?:integration|integration_sandbox|tests|bench|migrations)/[\w./]*)",
                               ALL_TEXTS[name])):
        if path == "integration/migrations/":  # the installed package's folder, built from migrations/
            continue
        assert (ROOT / path).exists(), f"{name} names {path}, which does not exist"


# -- the packages ---------------------------------------------------------------------------------------------

def test_the_package_map_has_one_row_per_room_of_the_layout_table():
    """docs/index.md's "The packages" names every room tests/test_layout.py's ALLOWED has, and no other."""
    from tests.test_layout import ALLOWED  # the layout test's table is the truth about rooms and arrows

    rows = table_rows(section(page("index.md"), "The packages"))
    documented = [re.fullmatch(r"`(\w+)`", row[0]).group(1) for row in rows]
    assert len(documented) == len(set(documented)), f"a room has two rows: {documented}"
    assert set(documented) == set(ALLOWED), (f"undocumented: {sorted(set(ALLOWED) - set(documented))}; "
                                             f"no such room: {sorted(set(documented) - set(ALLOWED))}")


# -- commands and options ---------------------------------------------------------------------------------

def command_tree(command: click.Command = main, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], click.Command]:
    """Every command of the ``integration`` click tree by its path (the root is ``()``)."""
    tree = {path: command}
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            tree.update(command_tree(sub, (*path, name)))
    return tree


COMMANDS = command_tree()
HELP = ("-h", "--help")


def option_names(command: click.Command) -> set[str]:
    return {name for param in command.params if isinstance(param, click.Option)
            for name in (*param.opts, *param.secondary_opts)}


def command_section(path: tuple[str, ...]) -> str:
    text = page("commands.md")
    if not path:
        return text.split("\n## ", 1)[0]
    return section(text, f"`integration {' '.join(path)}`")


def test_the_command_tree_is_walked():
    assert {("serve",), ("worker",), ("sandbox",)} <= set(COMMANDS)
    assert "--no-worker" in option_names(COMMANDS[("serve",)])


@pytest.mark.parametrize("path", sorted(p for p in COMMANDS if p), ids=" ".join)
def test_every_command_has_a_row_and_a_section(path):
    assert f"| `integration {' '.join(path)}` |" in page("commands.md")
    assert command_section(path).strip()


@pytest.mark.parametrize("path, option", sorted((p, o) for p, c in COMMANDS.items() for o in option_names(c)))
def test_every_option_is_documented_in_its_command_section(path, option):
    text = command_section(path)
    assert re.search(rf"`{re.escape(option)}[` ]", text), f"{option} of `integration {' '.join(path)}` undocumented"


def test_help_is_documented():
    assert all(f"`{name}`" in command_section(()) for name in HELP)


@pytest.mark.parametrize("path", sorted(p for p in COMMANDS if p), ids=" ".join)
def test_a_command_section_names_no_option_the_command_lacks(path):
    known = option_names(COMMANDS[path]) | option_names(main) | set(HELP)
    for span in code_spans(command_section(path)):
        if span.startswith("-"):
            assert span.split()[0] in known, f"`integration {' '.join(path)}` has no option {span}"


def command_uses() -> list[tuple[str, tuple[str, ...], list[str]]]:
    """(page, command path, options) for every ``integration <command> …`` in code, anywhere in the docs."""
    uses = []
    for name, text in ALL_TEXTS.items():
        for words in shell_commands(text):
            for i, word in enumerate(words):
                if word.rsplit("/", 1)[-1] != "integration" or i + 1 >= len(words) \
                        or not re.fullmatch(r"[a-z][\w-]*", words[i + 1]):
                    continue
                path, rest = (), words[i + 1:]
                while rest and (*path, rest[0]) in COMMANDS:
                    path, rest = (*path, rest[0]), rest[1:]
                if not path:
                    path = (rest[0],)  # an unknown command: reported by the test below
                uses.append((name, path, [w.split("=")[0] for w in rest if re.match(r"^--?[a-z]", w)]))
                break
    return uses


def test_command_uses_are_found():
    assert any(path == ("sandbox",) and "--billing-webhook-url" in opts for _, path, opts in command_uses())


@pytest.mark.parametrize("name, path, options", command_uses(), ids=str)
def test_every_command_and_option_the_docs_use_exists(name, path, options):
    assert path in COMMANDS, f"{name}: no command `integration {' '.join(path)}`"
    known = option_names(COMMANDS[path]) | option_names(main) | set(HELP)
    assert not set(options) - known, f"{name}: `integration {' '.join(path)}` has no {set(options) - known}"


# -- environment variables --------------------------------------------------------------------------------

def procfile_variables() -> set[str]:
    return set(re.findall(r"\$\{?([A-Z][A-Z0-9_]+)", read(ROOT / "Procfile")))


def code_variables() -> set[str]:
    """Every variable config.py validates, every other environment read in integration/, the Procfile's."""
    found = set(_VARIABLES) | procfile_variables()
    for path in (ROOT / "integration").rglob("*.py"):
        found |= environment_reads(read(path))
    return found


VARIABLES = code_variables()


def test_the_environment_scan_finds_reads_outside_config():
    assert {"GUNICORN_THREADS", "INTEGRATION_HEAD_TIMEOUT_SECONDS", "INTEGRATION_HANDLER_PLUGINS",
            "PORT", "PROMETHEUS_MULTIPROC_DIR", "WEB_CONCURRENCY"} <= VARIABLES
    assert environment_reads("import os\nNAME = 'X_Y'\nos.environ.get(NAME)\nos.getenv('Z_W')\n") == {"X_Y", "Z_W"}


def configuration_rows() -> dict[str, str]:
    """Variable → its row's text, from every table of docs/configuration.md whose first cell names variables."""
    rows = {}
    for row in table_rows(page("configuration.md")):
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row[0]):
            rows[name] = " | ".join(row)
    return rows


@pytest.mark.parametrize("variable", sorted(VARIABLES))
def test_every_variable_has_a_configuration_row(variable):
    assert variable in configuration_rows(), f"{variable} is read but has no row in docs/configuration.md"


@pytest.mark.parametrize("variable", sorted(configuration_rows()))
def test_every_configuration_row_is_a_variable_the_code_reads(variable):
    assert variable in VARIABLES


OUR_PREFIXES = ("ZUORA_", "BILLING_", "INTEGRATION_", "GUNICORN_", "PROMETHEUS_", "ADMIN_", "DATABASE_")


@pytest.mark.parametrize("name", sorted(ALL_TEXTS))
def test_every_variable_the_docs_name_exists(name):
    """A `ZUORA_…`-style name in code, a ``$NAME`` or a ``NAME=`` anywhere is a variable the code reads
    (failure codes such as ``ZUORA_REJECTED`` are not variables)."""
    text = ALL_TEXTS[name]
    named = {n for span in code_spans(text) for n in re.findall(r"\b([A-Z][A-Z0-9_]+)\b", span)
             if n.startswith(OUR_PREFIXES) or n == "PORT"}
    named |= {n for n in re.findall(r"\$\{?([A-Z][A-Z0-9_]+)|\b([A-Z][A-Z0-9_]+)=", text) for n in n if n}
    shell_only = {"TOKEN", "SIGNATURE"}  # set by the examples themselves
    unknown = named - VARIABLES - set(FAILURE_CODES) - shell_only
    assert not unknown, f"{name} names variables the code does not read: {sorted(unknown)}"


def test_the_procfile_shown_is_the_procfile():
    shown = code_blocks(section(page("operations.md"), "Processes and the Procfile"))[0].splitlines()
    actual = [line for line in read(ROOT / "Procfile").splitlines() if line and not line.startswith("#")]
    assert shown == actual


# -- HTTP routes ----------------------------------------------------------------------------------------

def routes(app) -> set[tuple[str, str]]:
    return {(method, rule.rule) for rule in app.url_map.iter_rules() if rule.endpoint != "static"
            for method in rule.methods - {"HEAD", "OPTIONS"}}


SERVICE = "http://localhost:8000"


@pytest.fixture(scope="module")
def service_routes(tmp_path_factory) -> set[tuple[str, str]]:
    from tests.conftest import make_config
    return routes(create_app(make_config(tmp_path_factory.mktemp("docs"))))


def test_every_route_has_a_row_or_heading_and_a_curl_example(service_routes):
    text = page("admin-api.md")
    calls = curl_calls(text, SERVICE)
    for method, rule in service_routes:
        named = re.sub(r"<[^>]+>", "<[^>]+>", re.escape(rule).replace(r"\<", "<").replace(r"\>", ">"))
        assert re.search(rf"`{method} {named}`", text) or re.search(rf"{method} [^`|]*`?{named}`", text), \
            f"docs/admin-api.md does not name {method} {rule}"
        assert any(m == method and matches(rule, path) for m, path in calls), \
            f"docs/admin-api.md has no curl example for {method} {rule}"


def test_every_curl_in_the_api_page_hits_a_route(service_routes):
    calls = curl_calls(page("admin-api.md"), SERVICE)
    assert len(calls) >= len(service_routes)
    for method, path in calls:
        assert any(m == method and matches(rule, path) for m, rule in service_routes), f"no route {method} {path}"


def test_every_route_the_api_page_names_exists(service_routes):
    for method, path in re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`\s]*)`", page("admin-api.md")):
        assert any(m == method and (r == path or matches(r, path)) for m, r in service_routes), f"{method} {path}"


SANDBOXES = {"ZUORA_BASE_URL": create_zuora_sandbox, "BILLING_BASE_URL": create_billing_sandbox}


def sandbox_controls() -> list[tuple[str, str, str]]:
    return sorted((variable, method, rule) for variable, factory in SANDBOXES.items()
                  for method, rule in routes(factory()) if rule.startswith("/_sandbox"))


@pytest.mark.parametrize("variable, method, rule", sandbox_controls())
def test_every_sandbox_control_has_a_curl_example(variable, method, rule):
    calls = curl_calls(page("sandboxes.md"), f"${variable}")
    assert any(m == method and matches(rule, path) for m, path in calls), \
        f"no curl example for {method} {rule} on ${variable}"


@pytest.mark.parametrize("variable", sorted(SANDBOXES))
def test_every_sandbox_curl_hits_a_real_route(variable):
    app_routes = routes(SANDBOXES[variable]())
    calls = curl_calls(page("sandboxes.md"), f"${variable}")
    assert calls
    for method, path in calls:
        assert any(m == method and matches(rule, path) for m, rule in app_routes), f"${variable}: no {method} {path}"


@pytest.mark.parametrize("shape", SHAPES)
def test_every_invoice_shape_is_documented(shape):
    rows = table_rows(section(page("sandboxes.md"), "The invoice `shape` option"))
    assert any(row[0] == f"`{shape}`" for row in rows)


@pytest.mark.parametrize("code", FAILURE_CODES)
def test_every_failure_code_is_in_the_failure_table(code):
    assert any(row[0] == f"`{code}`" for row in table_rows(section(page("operations.md"), "Failures")))


@pytest.mark.parametrize("code", REFUSAL_CODES)
def test_every_webhook_refusal_code_is_in_the_refusals_table(code):
    assert any(row[2] == f"`{code}`" for row in table_rows(section(page("admin-api.md"), "Refusals")))
