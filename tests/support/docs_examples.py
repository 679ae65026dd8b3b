"""Code the documentation shows, loaded from the files the docs include verbatim.

A doc includes an example as ``<!-- example: docs/examples/<file> -->`` followed by a
fenced block; :func:`included_examples` finds every such block so a test can check it is
the file, byte for byte, and :func:`load_example` imports the file to run it.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
_INCLUDED = re.compile(r"<!-- example: (?P<path>[^ ]+) -->\n```python\n(?P<code>.*?)```", re.S)


def included_examples(doc: Path) -> dict[str, str]:
    """``{path: code}`` for every example block of ``doc``."""
    return {m["path"]: m["code"] for m in _INCLUDED.finditer(doc.read_text())}


def load_example(relative: str) -> ModuleType:
    """A fresh module from ``ROOT / relative`` (its own globals: state never leaks between
    tests)."""
    path = ROOT / relative
    name = f"docs_example_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and the like look their module up
    spec.loader.exec_module(module)
    return module
