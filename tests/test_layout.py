"""The package layout stays as DESIGN.md draws it: one package per room, imports going one way.

Every import in every module of ``integration`` (top-level or inside a function: a lazy import is
still an arrow) is checked against the room table below, and the module graph must have no cycle.
A new module lands in a room by its path; a new arrow needs a change here, in review.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "integration"

SHARED = {"config", "context", "logs", "metrics"}
"""Process-wide leaves every room may use: settings, the current event, logging, metrics."""

ALLOWED: dict[str, set[str]] = {
    # room: rooms it may import (besides itself)
    "app": {"web", "store", "services", "cli", *SHARED},
    # actions: the operator actions (retry, delete, link, sync now, look-ups) that the admin API, the
    # console and the commands all call; plain functions over the store, so never the web nor the commands.
    "actions": {"store", "domain", "config", "metrics"},
    # cli: never the web (its output formats come from actions or its own modules).
    "cli": {"app", "actions", "worker", "flows", "store", "clients", "zuora", "domain", "services",
            "integration_sandbox", "billing", *SHARED},
    "config": set(),
    "context": set(),
    "logs": {"config", "context"},
    "metrics": set(),
    "services": {"store", "clients", "zuora", "domain", "billing", *SHARED},
    # billing: the billing platform as a port (CONTRACT §13): the model, the protocol and each adapter with
    # its own client (over the clients room's HTTP plumbing), readers, builders and webhook verification.
    # Below the flows, the services and the web; never the store (the flows record what it returns).
    "billing": {"clients", "domain", *SHARED},
    "store": {"domain", *SHARED},
    "clients": {"domain", *SHARED},
    "domain": set(),
    "flows": {"domain", "clients", "zuora", "store", "services", "billing", *SHARED},
    # worker, web: the model of what they read (reconciliation's lists) and the adapter's webhook verifier.
    "worker": {"flows", "store", "domain", "services", "billing", *SHARED},
    "web": {"actions", "store", "domain", "services", "billing", *SHARED},
    # zuora: the typed Zuora client and model (issue 25).
    "zuora": {"clients", "domain", *SHARED},
}
MODULE_ARROWS: dict[str, set[str]] = {
    # room: single modules of another room it may import, where a whole-room arrow would be too wide.
    # web → flows.totals: GET /admin/reports/totals must answer with the report, and the report reads
    # both remote APIs (read-only: no writes, no inbox). Only this flow module: the web room still
    # cannot run a flow that writes, nor reach the clients except through the report.
    "web": {"integration.flows.totals"},
}
APP_MODULES = {"integration", "integration.__main__", "integration.gunicorn_conf"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def room(module: str) -> str:
    if module.startswith("integration_sandbox"):
        return "integration_sandbox"
    if module in APP_MODULES:
        return "app"
    return module.split(".")[1]


def imports(path: Path) -> set[str]:
    """Every ``integration…`` module a file imports, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # ``from integration.store import inbox`` imports the module integration.store.inbox;
            # ``from integration.store.inbox import Inbox`` imports integration.store.inbox.
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if _is_module(sub) else target)
    return {name for name in found if name.split(".")[0] in ("integration", "integration_sandbox")}


def _is_module(name: str) -> bool:
    parts = name.split(".")
    if parts[0] != "integration":
        return False
    base = PACKAGE.parent.joinpath(*parts)
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
GRAPH = {name: imports(path) for name, path in MODULES.items()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_follow_the_room_table(module):
    mine = room(module)
    assert mine in ALLOWED, f"{module} is in no room of the table; add it to DESIGN.md and ALLOWED"
    wrong = sorted(target for target in GRAPH[module]
                   if room(target) != mine and room(target) not in ALLOWED[mine]
                   and target not in MODULE_ARROWS.get(mine, set()))
    assert not wrong, f"{module} ({mine}) may not import {wrong}"


def test_the_commands_import_nothing_from_the_web():
    """The CLI formats its output through integration.actions (or its own module), never the web's."""
    wrong = {name: sorted(t for t in targets if t == "integration.web" or t.startswith("integration.web."))
             for name, targets in GRAPH.items() if room(name) == "cli"}
    assert not {name: found for name, found in wrong.items() if found}


def test_operator_actions_import_neither_web_nor_cli():
    wrong = {name: sorted(t for t in targets if room(t) in ("web", "cli"))
             for name, targets in GRAPH.items() if room(name) == "actions"}
    assert not {name: found for name, found in wrong.items() if found}


def test_no_import_cycles():
    """Depth-first search over module → module arrows (package __init__ re-exports included)."""
    state: dict[str, str] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(GRAPH.get(node, ())):
            if nxt not in GRAPH or nxt == node or node.startswith(nxt + "."):
                continue  # a package importing its parent package is how submodules load, not a cycle
            if state.get(nxt) == "open":
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name)
    assert not cycles, "import cycles: " + "; ".join(" → ".join(c) for c in cycles)


def test_the_product_package_holds_no_sandbox():
    assert not (PACKAGE / "sandbox").exists()
    assert not any(name.split(".")[-1] in ("local_stack", "demo") for name in MODULES)


def test_no_module_is_over_400_lines():
    long = {name: n for name, path in MODULES.items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > 420}
    assert not long, f"split these by job: {long}"
