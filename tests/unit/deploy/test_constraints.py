"""constraints.txt: the one set of exact versions every install uses."""

from __future__ import annotations

import re
import tomllib

from runtime import transport
from tests.unit.deploy.conftest import ROOT

CONSTRAINTS = ROOT / "constraints.txt"


def pins() -> dict[str, str]:
    out = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"not an exact pin: {line!r}"
        out[re.sub(r"[-_.]+", "-", name).lower()] = version
    return out


def test_given_the_constraints_then_every_line_is_an_exact_pin_of_a_published_package() -> None:
    text = CONSTRAINTS.read_text()
    assert pins()
    assert "hyperwatch" not in pins(), "the project itself is not constrained"
    assert "file:" not in text and " @ " not in text, "no local paths or direct URLs"


def test_given_the_constraints_then_every_direct_dependency_is_pinned() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    names = {re.sub(r"[-_.]+", "-", re.split(r"[\[<>=!~; ]", r)[0]).lower() for r in requirements}
    assert names - pins().keys() == set()


def test_given_the_constraints_then_kombu_is_the_one_the_transport_was_written_against() -> None:
    assert pins()["kombu"].split(".")[:2] == transport.KOMBU_SERIES.split(".")


def test_given_make_install_and_ci_then_both_install_with_the_constraints() -> None:
    makefile = (ROOT / "Makefile").read_text()
    install = re.search(r"^install:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert install is not None
    assert "pip install" in install.group(1) and "-c constraints.txt" in install.group(1)
    assert re.search(r"^lock:", makefile, re.MULTILINE), "make lock regenerates the file"
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make install$", ci, re.MULTILINE)
    assert "pip install" not in ci, "CI installs only through make install"
