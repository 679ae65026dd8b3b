"""The house rules: imports point down the layers, and Redis key names live in one module.

Layers, top to bottom (architecture §5):

    workers/  (processes, CLI)  flowerconfig.py
    tasks/    (Celery tasks)    celeryconfig.py  beat_schedule.py
    domain/   (alerts, notifications: what they mean, apart from scheduling)
    runtime/  (the shared floor: metrics, Redis clients and keys, transport, lifecycle, …)
    models/   (SQLAlchemy models, repositories, migrations)
    settings.py  events.py

Every import counts, wherever it stands: a lazy import inside a function or under
``TYPE_CHECKING`` is still a dependency a reader has to follow.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

LAYERS: tuple[tuple[str, ...], ...] = (
    ("workers", "flowerconfig"),
    ("tasks", "celeryconfig", "beat_schedule"),
    ("domain",),
    ("runtime",),
    ("models",),
    ("settings", "events"),
)
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}
KEY_REGISTRY = Path("runtime/keys.py")


@dataclass(frozen=True)
class Violation:
    path: Path
    line: int
    imported: str
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line} imports {self.imported}: {self.why}"


def product_files(root: Path) -> Iterator[Path]:
    for unit in RANK:
        package = root / unit
        if package.is_dir():
            yield from sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)
        elif (root / f"{unit}.py").is_file():
            yield root / f"{unit}.py"


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(p for p in [*base, node.module or ""] if p)
            else:
                target = node.module or ""
            yield node.lineno, target
            for alias in node.names:  # ``from workers import lifecycle`` names a module too
                yield node.lineno, f"{target}.{alias.name}" if target else alias.name


def layer_violations(root: Path) -> list[Violation]:
    found: list[Violation] = []
    for path in product_files(root):
        module = module_name(root, path)
        unit = module.split(".")[0]
        tree = ast.parse(path.read_text(), filename=str(path))
        seen: set[tuple[int, str]] = set()
        for line, target in imported_modules(tree, module, path.name == "__init__.py"):
            other = target.split(".")[0]
            if other not in RANK or other == unit or (line, other) in seen:
                continue
            seen.add((line, other))
            if RANK[other] < RANK[unit]:
                found.append(
                    Violation(path.relative_to(root), line, target, f"{other} is above {unit}")
                )
    return found


def key_literals(root: Path) -> list[tuple[Path, int, str]]:
    """String constants (docstrings and f-string parts included) naming an ``hw:`` key."""
    found = []
    for path in product_files(root):
        if path.relative_to(root) == KEY_REGISTRY:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and "hw:" in node.value
            ):
                found.append((path.relative_to(root), node.lineno, node.value[:60]))
    return found


def test_no_module_imports_from_a_layer_above_it() -> None:
    problems = layer_violations(ROOT)
    assert not problems, "\n".join(map(str, problems))


def test_redis_key_names_are_spelled_only_in_the_registry() -> None:
    assert not key_literals(ROOT), key_literals(ROOT)


# --- the tests of the tests: each check fails on one bad line --------------------------------


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


CLEAN = {
    "workers/__init__.py": "",
    "workers/cli.py": "from tasks.persist import x\nimport runtime.metrics\n",
    "tasks/__init__.py": "",
    "tasks/persist.py": "from domain.alerts import rules\nfrom models import base\n",
    "domain/__init__.py": "",
    "runtime/__init__.py": "",
    "runtime/metrics.py": "from settings import Settings\nfrom . import keys\n",
    "runtime/keys.py": 'A = "hw:a"\n',
    "models/__init__.py": "",
    "settings.py": "import os\n",
}


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    root = write(tmp_path, CLEAN)
    assert layer_violations(root) == []
    assert key_literals(root) == []


@pytest.mark.parametrize(
    ("name", "text", "imported"),
    [
        ("tasks/base.py", "from workers.metrics import x\n", "workers.metrics"),
        ("runtime/health.py", "def f():\n    from tasks import app\n", "tasks"),
        ("runtime/health.py", "from domain.alerts import rules\n", "domain.alerts"),
        ("models/db.py", "import runtime.lifecycle\n", "runtime.lifecycle"),
        ("settings.py", "def f():\n    from models.secret_box import SecretBox\n", "models"),
        ("domain/alerts/coins.py", "from workers.ingester import cache\n", "workers.ingester"),
        ("celeryconfig.py", "from workers import lifecycle\n", "workers"),
        ("events.py", "import models.trade\n", "models.trade"),
    ],
)
def test_one_upward_import_fails(tmp_path: Path, name: str, text: str, imported: str) -> None:
    root = write(tmp_path, {**CLEAN, name: text})
    problems = layer_violations(root)
    assert [str(p.path) for p in problems] == [name]
    assert problems[0].imported.startswith(imported)


def test_a_relative_import_is_resolved(tmp_path: Path) -> None:
    root = write(tmp_path, {**CLEAN, "runtime/hyperliquid/__init__.py": "from ... import tasks\n"})
    assert [str(p.path) for p in layer_violations(root)] == ["runtime/hyperliquid/__init__.py"]


def test_a_key_spelled_outside_the_registry_fails(tmp_path: Path) -> None:
    root = write(tmp_path, {**CLEAN, "tasks/persist.py": 'def k(i):\n    return f"hw:x:{i}"\n'})
    assert [str(p) for p, _, _ in key_literals(root)] == ["tasks/persist.py"]
