"""The operator docs: linked from the README, links that resolve, examples that work."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.unit.deploy.conftest import ROOT

DOCS = ROOT / "docs"
LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {
        slug(line.lstrip("#"))
        for line in path.read_text().splitlines()
        if re.match(r"^#{1,6} ", line)
    }


def test_given_the_docs_folder_when_reading_the_readme_then_every_doc_is_linked() -> None:
    readme = (ROOT / "README.md").read_text()

    for doc in sorted(DOCS.glob("*.md")):
        assert f"](docs/{doc.name})" in readme, f"README does not link docs/{doc.name}"


@pytest.mark.parametrize("doc", [*sorted(p.name for p in DOCS.glob("*.md")), "../README.md"])
def test_given_a_doc_when_following_its_relative_links_then_files_and_anchors_exist(
    doc: str,
) -> None:
    path = (DOCS / doc).resolve()
    for target in LINK.findall(path.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        assert linked.exists(), f"{doc}: broken link {target}"
        if anchor:
            assert anchor in anchors(linked), f"{doc}: no heading for #{anchor} in {linked.name}"


def test_given_the_docs_when_they_show_a_receiver_then_it_is_the_one_example_file() -> None:
    # One receiver, as code (docs/examples/webhook_receiver.py, run by
    # tests/unit/notify/test_receiver_example.py and the integration tests): SECURITY.md
    # links to it, and every doc that shows code includes that file verbatim, never a
    # second copy that could drift from what the tests run.
    security = (DOCS / "SECURITY.md").read_text()
    assert "(examples/webhook_receiver.py)" in security
    for doc in DOCS.glob("*.md"):
        blocks = re.findall(
            r"(<!-- example: ([^ ]+) -->\n)?```python\n(.*?)```", doc.read_text(), re.S
        )
        for marker, path, code in blocks:
            if "hmac" not in code:
                continue  # not a receiver
            assert marker, f"{doc.name} shows receiver code that is not an included example"
            assert code == (ROOT / path).read_text(), f"{doc.name}: {path} differs from the file"
