"""All SQL lives in integration/store/: a string literal anywhere else in the product package that
reads like SQL fails this test (the store's named queries are the one place to add one)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import integration

PACKAGE = Path(integration.__file__).parent
STORE = PACKAGE / "store"
# The keywords as this codebase writes SQL: upper case (prose says "select" and "update" too).
SQL = re.compile(r"\b(SELECT\b.{0,300}?\bFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|PRAGMA\s+\w+)\b",
                 re.DOTALL)


def sql_literals(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string literal (f-string parts included) in ``path`` that looks like SQL."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
            found.append((node.lineno, node.value[:60]))
    return sorted(found)


def test_the_detector_sees_sql_in_literals_and_f_strings(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('a = "SELECT id FROM events"\nb = f"UPDATE events SET x = {1}"\nc = "PRAGMA data_version"\n'
                      'd = "an update of the settings"\n')
    assert [line for line, _ in sql_literals(sample)] == [1, 2, 3]


def test_no_sql_outside_the_store():
    offenders = {str(path.relative_to(PACKAGE)): hits
                 for path in sorted(PACKAGE.rglob("*.py")) if STORE not in path.parents
                 for hits in [sql_literals(path)] if hits}
    assert offenders == {}
