"""One clock type and one retry schedule type, each used everywhere (issue 18 item 4).

Time is handed to product code as a ``runtime.clock.Clock`` (or, to pure functions, as a
reading such as ``now_ms: int``) — never as a bare callable (``now=time.time``,
``clock=time.monotonic``). Only ``runtime/clock.py`` defines a clock class and only
``runtime/retry.py`` a retry policy class.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("workers", "tasks", "domain", "runtime", "models")
CLOCK_MODULE = Path("runtime/clock.py")
RETRY_MODULE = Path("runtime/retry.py")
# Names under which a callable would be a clock in disguise.
TIME_NAMES = frozenset({"now", "now_s", "now_ms", "clock", "monotonic", "today", "wall"})
TIME_FUNCTIONS = frozenset({"time.time", "time.monotonic", "time.time_ns", "time.perf_counter"})
# Edited elsewhere while this rule was introduced; the exchange hands it ``clock.time_ms``.
EXEMPT = frozenset({(Path("workers/simulator/info.py"), "now_ms")})


def product_files(root: Path) -> Iterator[Path]:
    for unit in PRODUCT:
        if (root / unit).is_dir():
            yield from sorted(
                p for p in (root / unit).rglob("*.py") if "__pycache__" not in p.parts
            )


def _dotted(node: ast.AST | None) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _is_callable_of_nothing(annotation: ast.AST | None) -> bool:
    """``Callable[[], X]`` (any X), however ``Callable`` was imported, quoted or not."""
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        annotation = ast.parse(annotation.value, mode="eval").body
    if not isinstance(annotation, ast.Subscript):
        return False
    if _dotted(annotation.value).rpartition(".")[2] != "Callable":
        return False
    args = annotation.slice
    return (
        isinstance(args, ast.Tuple)
        and bool(args.elts)
        and isinstance(args.elts[0], ast.List)
        and not args.elts[0].elts
    )


def clock_problems(root: Path) -> list[str]:
    found: list[str] = []
    for path in product_files(root):
        rel = path.relative_to(root)
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ClassDef)
                and rel != CLOCK_MODULE
                and node.name.endswith("Clock")
            ):
                found.append(f"{rel}:{node.lineno} defines its own clock class {node.name}")
            if (
                isinstance(node, ast.ClassDef)
                and rel != RETRY_MODULE
                and node.name == "RetryPolicy"
            ):
                found.append(f"{rel}:{node.lineno} defines its own RetryPolicy")
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                arguments = node.args
                params = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
                defaults = [
                    *[None]
                    * (len(arguments.posonlyargs) + len(arguments.args) - len(arguments.defaults)),
                    *arguments.defaults,
                    *arguments.kw_defaults,
                ]
                for param, default in zip(params, defaults, strict=True):
                    found += _param_problem(rel, node.lineno, param.arg, param.annotation, default)
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                found += _param_problem(
                    rel, node.lineno, node.target.id, node.annotation, node.value
                )
    return found


def _param_problem(
    rel: Path, line: int, name: str, annotation: ast.AST | None, default: ast.AST | None
) -> list[str]:
    if (rel, name) in EXEMPT:
        return []
    if _dotted(default) in TIME_FUNCTIONS:
        return [f"{rel}:{line} {name} defaults to {_dotted(default)}: take a Clock"]
    if name in TIME_NAMES and _is_callable_of_nothing(annotation):
        return [f"{rel}:{line} {name} is a bare callable: take a runtime.clock.Clock"]
    return []


def test_time_is_passed_as_the_one_clock_type() -> None:
    problems = clock_problems(ROOT)
    assert not problems, "\n".join(problems)


# --- the test of the test ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "import time\ndef f(now=time.time):\n    return now()\n",
        "from collections.abc import Callable\ndef f(clock: Callable[[], float]):\n    pass\n",
        "class Job:\n    def __init__(self, *, monotonic: 'Callable[[], float]'):\n        pass\n",
        "from dataclasses import dataclass\n@dataclass\nclass C:\n    now: Callable[[], int]\n",
        "class WallClock:\n    pass\n",
        "class RetryPolicy:\n    pass\n",
    ],
)
def test_one_stray_clock_fails(tmp_path: Path, text: str) -> None:
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "job.py").write_text(text)
    assert len(clock_problems(tmp_path)) == 1


def test_a_clock_and_other_callables_pass(tmp_path: Path) -> None:
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "job.py").write_text(
        "from runtime.clock import SYSTEM_CLOCK, Clock\n"
        "def f(clock: Clock = SYSTEM_CLOCK, memory: Callable[[], int] = len, now_ms: int = 0):\n"
        "    pass\n"
    )
    assert clock_problems(tmp_path) == []
