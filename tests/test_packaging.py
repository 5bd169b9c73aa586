"""The distribution: the top-level ``migrations/`` ships inside the package, and an installed copy
migrates a new store without the repository next to it.

The build runs setuptools' ``build_py`` (what a wheel's payload is made of) on a copy of the
sources, offline, with the test environment's own setuptools; the copy keeps the repository clean.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from integration.store.migrate import migrations_folder, revisions

REPO = Path(__file__).resolve().parent.parent
ENGINES = ("sqlite", "postgresql")
MIGRATION_FILES = ("env.py", "script.py.mako", "versions/*.py", "legacy/sqlite/*.sql", "legacy/postgresql/*.sql")


def migration_files(root: Path) -> list[str]:
    """Every file of the migrations that an installed copy needs, relative to ``root``."""
    return sorted(p.relative_to(root).as_posix() for pattern in MIGRATION_FILES for p in root.glob(pattern))
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "integration", "integration_sandbox", "migrations")


@pytest.fixture(scope="module")
def build_lib(tmp_path_factory) -> Path:
    """The package payload as a wheel would carry it, built from a copy of the sources."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        origin = REPO / name
        if origin.is_dir():
            shutil.copytree(origin, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(origin, src / name)
    out = tmp_path_factory.mktemp("build") / "lib"
    result = subprocess.run([sys.executable, "-c", "import setuptools; setuptools.setup()", "-q",
                             "build_py", "--build-lib", str(out)],
                            cwd=src, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return out


def test_migrations_are_the_repositorys_top_level_folder():
    assert migrations_folder() == REPO / "migrations"
    assert not (REPO / "integration" / "migrations").exists()
    # Every revision file of versions/, oldest first: a new migration needs no registration.
    assert len(revisions()) == len(list((REPO / "migrations" / "versions").glob("*.py")))
    assert sorted(revisions()) == list(revisions()), "revision IDs start with their number"
    assert not list((REPO / "migrations").glob("*.sql")), "SQL files are the old runner's: legacy/<engine>/"


def test_build_carries_every_migration_inside_the_package(build_lib):
    shipped = migration_files(build_lib / "integration" / "migrations")
    assert shipped == migration_files(REPO / "migrations")
    for part in ("env.py", "versions/0001_baseline.py", "legacy/sqlite/0012_events_one_running.sql",
                 "legacy/postgresql/0008_reconcile_baseline.sql"):
        assert part in shipped, f"{part} not in the build"
    assert not (build_lib / "migrations").exists(), "migrations must not become a top-level package"


def test_build_carries_every_python_package(build_lib):
    """pyproject.toml lists the packages (find cannot map migrations/); a new one must be listed too."""
    source = {p.relative_to(REPO).as_posix() for package in ("integration", "integration_sandbox")
              for p in (REPO / package).rglob("*.py")}
    built = {p.relative_to(build_lib).as_posix() for package in ("integration", "integration_sandbox")
             for p in (build_lib / package).rglob("*.py")}
    missing = sorted(source - built)
    assert not missing, f"add their packages to [tool.setuptools] packages in pyproject.toml: {missing}"


def test_installed_copy_migrates_a_new_store_away_from_the_repository(build_lib, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(build_lib), "DATABASE_URL": f"sqlite:///{tmp_path}/new.db"}
    where = subprocess.run([sys.executable, "-c",
                            "from integration.store.db import migrations_folder as f; print(f())"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert where.stdout.strip() == str(build_lib / "integration" / "migrations"), where.stderr
    result = subprocess.run([sys.executable, "-m", "integration", "migrate"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    names = list(revisions())
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"applied {len(names)} migration(s): {', '.join(names)}\n"
