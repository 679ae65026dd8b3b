"""The operator docs: linked from the README, links that resolve, examples that work."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from domain.notify.signing import build_headers
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


def test_given_the_receiver_example_in_security_md_when_run_then_it_accepts_our_signature() -> None:
    text = (DOCS / "SECURITY.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S)
    assert code, "SECURITY.md has no Python receiver example"
    namespace: dict[str, object] = {}
    exec(compile(code.group(1), "SECURITY.md", "exec"), namespace)  # noqa: S102 - our own doc
    verify = namespace["verify"]
    assert callable(verify)
    body = b'{"alert": 1}'
    headers = build_headers("s3cret-value", body, "key-1", int(time.time()))

    assert verify(b"s3cret-value", headers, body) is True
    assert verify(b"another-secret", headers, body) is False
    assert verify(b"s3cret-value", headers, body + b" ") is False
    stale = build_headers("s3cret-value", body, "key-1", int(time.time()) - 3600)
    assert verify(b"s3cret-value", stale, body) is False
