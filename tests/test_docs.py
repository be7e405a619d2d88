"""The docs that are generated from code must be current."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_api_coverage_page_is_current() -> None:
    spec = importlib.util.spec_from_file_location("gen_api_coverage", ROOT / "tools" / "gen_api_coverage.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / "docs" / "api-coverage.md").read_text() == module.render(), \
        "docs/api-coverage.md is stale: run .venv/bin/python tools/gen_api_coverage.py"
