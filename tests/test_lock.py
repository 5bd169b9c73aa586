"""The locks: the README's commands and ``.ci/run`` install exact, hash-checked versions, and those
versions are the ones ``pyproject.toml`` admits.

``requirements.lock`` (the product) and ``requirements-test.lock`` (the product and its ``[test]``
extra) are written by ``scripts/lock`` and never by hand. These tests fail when ``pyproject.toml``
names a dependency a lock does not cover, when a locked version falls outside its range, when the
two locks disagree, when a dependency of a locked package is missing from the lock, or when the
environment the suite runs in is not the one the lock describes.
"""
from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PRODUCT_LOCK = ROOT / "requirements.lock"
TEST_LOCK = ROOT / "requirements-test.lock"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PRODUCT = [Requirement(text) for text in PROJECT["project"]["dependencies"]]
TEST_EXTRA = [Requirement(text) for text in PROJECT["project"]["optional-dependencies"]["test"]]
BUILD = [Requirement(text) for text in PROJECT["build-system"]["requires"]]

_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)"
                  r"\s*(?:;\s*(?P<marker>[^\\]+?))?\s*\\?$")


class Pin:
    """One locked package: its exact version, the marker that says where it applies, its hashes."""

    def __init__(self, name: str, version: str, marker: str | None):
        self.name, self.version = name, version
        self.requirement = Requirement(f"{name}=={version}" + (f"; {marker}" if marker else ""))
        self.hashes: list[str] = []

    def applies_here(self) -> bool:
        return self.requirement.marker is None or self.requirement.marker.evaluate()


def read_lock(path: Path) -> dict[str, Pin]:
    pins: dict[str, Pin] = {}
    current: Pin | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := _PIN.match(line):
            current = Pin(match["name"], match["version"], match["marker"])
            name = canonicalize_name(current.name)
            assert name not in pins, f"{path.name} pins {name} twice"
            pins[name] = current
        elif current is not None and (hashed := re.match(r"^\s+--hash=(\S+)", line)):
            current.hashes.append(hashed.group(1))
        elif line.strip() and not line.lstrip().startswith("#"):
            assert line.startswith(" "), f"{path.name}: a line the lock format does not have: {line!r}"
    return pins


LOCKS = {"requirements.lock": read_lock(PRODUCT_LOCK), "requirements-test.lock": read_lock(TEST_LOCK)}
COVERS = {"requirements.lock": PRODUCT + BUILD, "requirements-test.lock": PRODUCT + TEST_EXTRA + BUILD}


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_dependency_pyproject_names_is_locked_within_its_range(lock):
    pins = LOCKS[lock]
    for requirement in COVERS[lock]:
        pin = pins.get(canonicalize_name(requirement.name))
        assert pin is not None, f"{lock} does not cover {requirement} from pyproject.toml: run scripts/lock"
        assert requirement.specifier.contains(pin.version), (
            f"{lock} pins {pin.name}=={pin.version}, outside pyproject.toml's {requirement}: run scripts/lock")


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_locked_file_is_hash_checked(lock):
    unhashed = sorted(name for name, pin in LOCKS[lock].items() if not pin.hashes)
    assert not unhashed, f"{lock} has no --hash for {unhashed}: pip's --require-hashes would refuse it"
    assert all(h.startswith("sha256:") for pin in LOCKS[lock].values() for h in pin.hashes)


def test_the_two_locks_agree_on_every_version():
    product, test = LOCKS["requirements.lock"], LOCKS["requirements-test.lock"]
    differ = {name: (pin.version, test[name].version if name in test else None)
              for name, pin in product.items() if name not in test or test[name].version != pin.version}
    assert not differ, f"requirements.lock and requirements-test.lock differ (product, test): {differ}"


def _closure(roots: list[Requirement]) -> dict[str, str]:
    """Every distribution the roots need on this interpreter, read from what is installed: name → who needs it."""
    needed: dict[str, str] = {}
    todo = [(requirement, "pyproject.toml", frozenset[str]()) for requirement in roots]
    seen_extras: set[tuple[str, frozenset[str]]] = set()
    while todo:
        requirement, needed_by, parent_extras = todo.pop()
        if requirement.marker is not None and not any(
                requirement.marker.evaluate({**default_environment(), "extra": extra})
                for extra in (parent_extras or {""})):
            continue
        name = canonicalize_name(requirement.name)
        needed.setdefault(name, needed_by)
        extras = frozenset(requirement.extras)
        if (name, extras) in seen_extras:
            continue
        seen_extras.add((name, extras))
        try:
            requires = metadata.requires(requirement.name) or []
        except metadata.PackageNotFoundError:
            continue  # reported by test_the_environment_is_the_lock
        todo.extend((Requirement(text), name, extras) for text in requires)
    return needed


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_the_lock_holds_every_transitive_dependency(lock):
    """A dependency of a dependency that the lock lacks would be resolved afresh on a new machine."""
    missing = {name: by for name, by in _closure(COVERS[lock]).items() if name not in LOCKS[lock]}
    assert not missing, f"{lock} lacks (package: needed by) {missing}: run scripts/lock"


def test_the_environment_is_the_lock():
    """The suite runs on exactly the locked versions: proof that the README's command installed from the lock."""
    wrong = {}
    for name, pin in LOCKS["requirements-test.lock"].items():
        if not pin.applies_here():
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != pin.version:
            wrong[name] = (pin.version, installed)
    assert not wrong, ("installed versions differ from requirements-test.lock (locked, installed): "
                       f"{wrong}; install with the README's test command")
