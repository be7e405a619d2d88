"""Fail when a conformance test that passed in the committed report no longer passes.

CI runs it after `make conformance`: `python -m conformance.regression BASELINE.json NEW.json`.
A test counts as a regression when the baseline says `passed` and the new run says anything
else; newly passing tests are reported as progress. A suite slower than the limit fails too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SUITE_LIMIT_SECONDS = 20 * 60


def statuses(report: dict) -> dict[str, str]:
    return {t["codename"]: t["status"] for t in report.get("tests", [])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.regression", description=__doc__.split("\n")[0])
    parser.add_argument("baseline", type=Path)
    parser.add_argument("new", type=Path)
    args = parser.parse_args(argv)
    old = json.loads(args.baseline.read_text())
    new = json.loads(args.new.read_text())
    before, after = statuses(old), statuses(new)
    lost = sorted(c for c, s in before.items() if s == "passed" and after.get(c) != "passed")
    gained = sorted(c for c, s in after.items() if s == "passed" and before.get(c) != "passed")
    for codename in gained:
        print(f"NEWLY PASSING {codename}")
    for codename in lost:
        print(f"REGRESSION {codename}: now {after.get(codename, 'missing')}")
    seconds = float(new.get("suite_seconds") or 0)
    print(f"conformance: {new.get('passed')} passed (baseline {old.get('passed')}), "
          f"{len(lost)} regressions, suite {seconds:.0f}s")
    if seconds > SUITE_LIMIT_SECONDS:
        print(f"conformance suite took {seconds:.0f}s, over the {SUITE_LIMIT_SECONDS}s limit")
        return 1
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
