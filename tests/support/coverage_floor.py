"""Print line and branch coverage of the last test run and hold them to their floors.

``make test`` runs pytest with coverage (pyproject.toml, ``[tool.coverage.*]``: every
process the tests start measures itself), then this: one line per measure, and exit 1 when
either is below its floor. The floors sit a little under the measured figures, so a change
that drops tests or adds untested code fails CI instead of slowly eroding them.

    python -m tests.support.coverage_floor [--data .coverage]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import coverage

LINE_FLOOR = 93.0  # measured 95.3 % (2026-12-05)
BRANCH_FLOOR = 85.0  # measured 87.6 %


def totals(data_file: str) -> tuple[float, float, int, int]:
    """(line %, branch %, lines, branches) from coverage's own JSON totals."""
    cov = coverage.Coverage(data_file=data_file)
    cov.load()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "coverage.json"
        cov.json_report(outfile=str(out))
        t = json.loads(out.read_text())["totals"]
    lines, branches = t["num_statements"], t["num_branches"]
    line_pct = 100.0 * t["covered_lines"] / lines if lines else 0.0
    branch_pct = 100.0 * t["covered_branches"] / branches if branches else 0.0
    return line_pct, branch_pct, lines, branches


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=".coverage")
    args = parser.parse_args(argv)
    line_pct, branch_pct, lines, branches = totals(args.data)
    print(f"coverage: lines {line_pct:.1f}% of {lines} (floor {LINE_FLOOR:g}%)")
    print(f"coverage: branches {branch_pct:.1f}% of {branches} (floor {BRANCH_FLOOR:g}%)")
    if line_pct < LINE_FLOOR or branch_pct < BRANCH_FLOOR:
        print("coverage below its floor", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
