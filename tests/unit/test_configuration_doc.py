"""docs/CONFIGURATION.md is generated from the Settings object and must match it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from settings import Settings
from workers.commands.config import configuration_doc

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "CONFIGURATION.md"
REGENERATE = "hyperwatch config docs > docs/CONFIGURATION.md"


def test_given_the_settings_object_when_generating_then_the_checked_in_file_is_identical() -> None:
    assert DOC.read_text() == configuration_doc(), f"docs/CONFIGURATION.md is stale: {REGENERATE}"


def test_given_every_setting_when_documented_then_it_has_a_row_with_its_description() -> None:
    doc = configuration_doc()

    for name, field in Settings.model_fields.items():
        rows = [line for line in doc.splitlines() if line.startswith(f"| `{name.upper()}` |")]
        assert len(rows) == 1, name
        assert field.description, f"{name} has no description to document"
        assert field.description.replace("|", "\\|") in rows[0], name


def test_given_a_secret_when_documented_then_its_row_says_so() -> None:
    doc = configuration_doc()

    for name in ("SENTRY_DSN", "FLOWER_BASIC_AUTH", "DATABASE_URL", "REDIS_URL", "BROKER_URL"):
        row = next(line for line in doc.splitlines() if line.startswith(f"| `{name}` |"))
        assert "secret" in row, name


def test_given_bounds_when_documented_then_they_come_from_the_field() -> None:
    row = next(
        line
        for line in configuration_doc().splitlines()
        if line.startswith("| `DATABASE_MAX_CONNECTIONS` |")
    )

    assert "integer, ≥ 1, ≤ 1000" in row


def test_given_the_cli_when_asked_then_it_prints_the_same_document(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "workers.cli", "config", "docs"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == configuration_doc()
