"""Run the reproduced conformance suite (or read its junit XML) and write report.md / report.json.

    python -m conformance.report            # run the suite, then write the report
    python -m conformance.report --no-run   # only rebuild the report from the last junit XML
    python -m conformance.report -- -k Namespaces   # extra pytest arguments after `--`

The upstream list and the classification are read from `../shared/conformance/` (override with
--list / --classification or PYKUBE_CONFORMANCE_LIST / PYKUBE_CONFORMANCE_CLASSIFICATION). The
denominators count the upstream tests promoted in the emulated release (--release, default 1.33)
or earlier.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_JUNIT = REPO / ".pykube" / "conformance" / "junit.xml"
REPRODUCIBLE = ("api-only", "controllers", "pod-exec")
NOT_REPRODUCED = ("image-specific", "network", "privileged/linux")
BUCKETS = REPRODUCIBLE + NOT_REPRODUCED
STATUSES = ("passed", "failed", "xfail", "skipped")


def release_tuple(text: str) -> tuple[int, int]:
    """'v1.9, v1.18' -> (1, 9): the release a test was first promoted in."""
    m = re.search(r"(\d+)\.(\d+)", text or "")
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def first_line(text: str) -> str:
    for line in (text or "").splitlines():
        line = line.strip()
        if line:
            return line[:300]
    return ""


def error_line(message: str, body: str) -> str:
    """The most telling line of a failure: the `E   ...` line pytest prints, else its message."""
    for line in (body or "").splitlines():
        if line.startswith("E  "):
            return line[1:].strip()[:300]
    return first_line(message) or first_line(body)


def read_junit(path: Path) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        codename = props.get("codename")
        if not codename:
            continue
        nodeid = f"{case.get('classname')}::{case.get('name')}"
        status, detail = "passed", ""
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        skipped = case.find("skipped")
        if failure is not None:
            status, detail = "failed", error_line(failure.get("message", ""), failure.text or "")
        elif skipped is not None:
            if skipped.get("type") == "pytest.xfail":
                status = "xfail"
                detail = first_line(skipped.get("message", "")).removeprefix("reason: ")
            else:
                status, detail = "skipped", first_line(skipped.get("message", ""))
        prior = results.get(codename)
        if prior and prior["status"] == "failed":  # a setup error plus a call failure: keep the first
            continue
        results[codename] = {"status": status, "detail": detail, "nodeid": nodeid,
                             "seconds": round(float(case.get("time") or 0), 2)}
    return results


def load_list(path: Path) -> list[dict[str, Any]]:
    import yaml

    return list(yaml.safe_load(path.read_text()))


def load_classification(path: Path) -> dict[str, dict[str, str]]:
    import csv

    with path.open(newline="") as fh:
        return {row["codename"]: row for row in csv.DictReader(fh, delimiter="\t")}


def build(results: dict[str, dict[str, Any]], upstream: list[dict[str, Any]], classes: dict[str, dict[str, str]],
          release: tuple[int, int], seconds: float | None) -> dict[str, Any]:
    tests = []
    for entry in upstream:
        codename = entry["codename"]
        cls = classes.get(codename, {})
        rel = release_tuple(str(entry.get("release", "")))
        area = cls.get("area") or (re.match(r"\[sig-([\w-]+)\]", codename) or [None, "?"])[1]
        bucket = cls.get("needs", "?")
        res = results.get(codename)
        if res:
            status = res["status"]
        elif bucket in NOT_REPRODUCED:
            status = "not-reproduced"
        else:
            status = "not-implemented"
        tests.append({
            "codename": codename, "testname": entry.get("testname", ""), "area": area, "bucket": bucket,
            "release": str(entry.get("release", "")), "in_release": rel <= release, "status": status,
            "detail": (res or {}).get("detail", "") if res else (cls.get("reason", "") if status == "not-reproduced" else ""),
            "nodeid": (res or {}).get("nodeid", ""), "seconds": (res or {}).get("seconds", 0.0),
            "file": entry.get("file", ""),
        })
    unknown = sorted(set(results) - {t["codename"] for t in tests})
    scope = [t for t in tests if t["in_release"]]
    columns = ("passed", "failed", "xfail", "skipped", "not-implemented", "not-reproduced")

    def table(key: str) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys((*columns, "total"), 0))
        for t in scope:
            out[t[key]][t["status"]] += 1
            out[t[key]]["total"] += 1
        return dict(sorted(out.items()))

    totals = Counter(t["status"] for t in scope)
    passed = totals["passed"]
    return {
        "generated": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "release": f"{release[0]}.{release[1]}",
        "suite_seconds": round(seconds, 1) if seconds is not None else None,
        "upstream_in_release": len(scope),
        "upstream_total": len(tests),
        "passed": passed,
        "share_passed": round(passed / len(scope), 4) if scope else 0.0,
        "totals": {c: totals[c] for c in columns},
        "by_area": table("area"),
        "by_bucket": table("bucket"),
        "unknown_codenames": unknown,
        "tests": tests,
    }


def markdown(rep: dict[str, Any]) -> str:
    cols = ("passed", "failed", "xfail", "skipped", "not-implemented", "not-reproduced", "total")
    scope = [t for t in rep["tests"] if t["in_release"]]
    out = [
        "# pykube conformance report",
        "",
        f"Generated {rep['generated']} by `python -m conformance.report`; emulated release {rep['release']}.",
        "",
        f"**{rep['passed']} of {rep['upstream_in_release']} upstream conformance tests of release <= "
        f"{rep['release']} pass ({rep['share_passed']:.1%}).**"
        + (f" Suite time: {rep['suite_seconds']} s." if rep["suite_seconds"] is not None else ""),
        "",
        "Statuses: *passed*/*failed*/*xfail* come from the Python reproductions in `conformance/tests/` "
        "(xfail = strict expected failure naming a missing capability); *not-implemented* = "
        "reproducible (api-only, controllers, pod-exec) but not written yet; *not-reproduced* = needs "
        "the upstream test images, a pod network or privileged Linux features (reasons below).",
        "",
    ]
    for title, key in (("By bucket", "by_bucket"), ("By area", "by_area")):
        out += [f"## {title}", "", "| " + key[3:] + " | " + " | ".join(cols) + " |",
                "|---" * (len(cols) + 1) + "|"]
        total = Counter()
        for name, row in rep[key].items():
            out.append(f"| {name} | " + " | ".join(str(row[c]) for c in cols) + " |")
            total.update(row)
        out.append("| **total** | " + " | ".join(f"**{total[c]}**" for c in cols) + " |")
        out.append("")

    def listing(title: str, status: str, with_detail: bool = True) -> None:
        rows = [t for t in scope if t["status"] == status]
        out.extend([f"## {title} ({len(rows)})", ""])
        for t in sorted(rows, key=lambda t: t["codename"]):
            line = f"- `{t['codename']}`"
            if with_detail and t["detail"]:
                line += f" — {t['detail']}"
            out.append(line)
        out.append("")

    listing("Failures", "failed")
    listing("Expected failures (missing capability)", "xfail")
    listing("Skipped", "skipped")
    listing("Passed", "passed", with_detail=False)
    listing("Not implemented yet (reproducible)", "not-implemented", with_detail=False)
    listing("Not reproduced (image-specific, network, privileged/linux)", "not-reproduced")
    later = [t for t in rep["tests"] if not t["in_release"]]
    if later:
        out += [f"## Newer than {rep['release']} (not counted: {len(later)})", ""]
        out += [f"- `{t['codename']}` ({t['release']}) — {t['status']}" for t in later]
        out.append("")
    if rep["unknown_codenames"]:
        out += ["## Tests whose codename is not in the upstream list", ""]
        out += [f"- `{c}`" for c in rep["unknown_codenames"]]
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    shared = REPO.parent / "shared" / "conformance"
    p = argparse.ArgumentParser(prog="python -m conformance.report", description=__doc__.split("\n")[0])
    p.add_argument("--no-run", action="store_true", help="do not run the suite; read the existing junit XML")
    p.add_argument("--junit", type=Path, default=DEFAULT_JUNIT)
    p.add_argument("--list", type=Path, default=Path(os.environ.get("PYKUBE_CONFORMANCE_LIST", shared / "upstream-conformance.yaml")))
    p.add_argument("--classification", type=Path,
                   default=Path(os.environ.get("PYKUBE_CONFORMANCE_CLASSIFICATION", shared / "classification.tsv")))
    p.add_argument("--release", default="1.33", help="emulated release; upstream tests promoted later are not counted")
    p.add_argument("--out", type=Path, default=HERE, help="directory for report.md and report.json")
    p.add_argument("--kubeconfig", default="", help="run against this running cluster instead of a fresh one")
    args = p.parse_args(argv)
    for path in (args.list, args.classification):
        if not path.exists():
            print(f"conformance.report: {path} not found (see --list / --classification)", file=sys.stderr)
            return 2
    seconds = None
    code = 0
    if not args.no_run:
        args.junit.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pytest", str(HERE / "tests"), "-q", "-p", "no:cacheprovider",
               "--conformance-progress", f"--junitxml={args.junit}", "-o", "junit_family=xunit1", *extra]
        if args.kubeconfig:
            cmd.append(f"--conformance-kubeconfig={args.kubeconfig}")
        env = {**os.environ, "PYKUBE_CONFORMANCE_LIST": str(args.list),
               "PYKUBE_CONFORMANCE_CLASSIFICATION": str(args.classification)}
        start = time.monotonic()
        code = subprocess.call(cmd, cwd=REPO, env=env)
        seconds = time.monotonic() - start
    if not args.junit.exists():
        print(f"conformance.report: no junit XML at {args.junit}", file=sys.stderr)
        return 2
    results = read_junit(args.junit)
    rep = build(results, load_list(args.list), load_classification(args.classification),
                release_tuple(args.release), seconds)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(rep, indent=1) + "\n")
    (args.out / "report.md").write_text(markdown(rep))
    t = rep["totals"]
    print(f"\nconformance (release <= {rep['release']}): {rep['passed']}/{rep['upstream_in_release']} passed "
          f"({rep['share_passed']:.1%}); failed {t['failed']}, xfail {t['xfail']}, skipped {t['skipped']}, "
          f"not implemented {t['not-implemented']}, not reproduced {t['not-reproduced']}")
    for bucket, row in rep["by_bucket"].items():
        print(f"  {bucket:17} passed {row['passed']:3}  failed {row['failed']:3}  xfail {row['xfail']:3}  "
              f"not implemented {row['not-implemented']:3}  not reproduced {row['not-reproduced']:3}  of {row['total']}")
    print(f"wrote {args.out / 'report.md'} and {args.out / 'report.json'}")
    # pytest's exit code: 1 when a test failed (or a strict xfail passed)
    return code if code in (0, 1) else code


if __name__ == "__main__":
    raise SystemExit(main())
