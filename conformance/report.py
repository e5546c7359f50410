"""Console lines, the summary and JUnit XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from typing import TextIO

from .runner import FAIL, KNOWN, PASS, SKIP, Result

LABELS = {PASS: "PASS", FAIL: "FAIL", SKIP: "SKIP", KNOWN: "KNOWN"}


def line(r: Result, strict: bool) -> str:
    label = LABELS[r.status]
    if r.status == FAIL and not r.counts(strict):
        label = "WARN"  # a SHOULD that failed without --strict
    c = r.check
    text = f"{label:<5} §{c.section:<6} {c.level:<6} {c.title}  ({r.seconds * 1000:.0f} ms)"
    if r.detail and r.status != PASS:
        text += f"\n      -> {r.detail}"
    elif r.detail:
        text += f"\n      note: {r.detail}"
    return text


def summary(results: list[Result], strict: bool, seconds: float) -> str:
    n = Counter(r.status for r in results)
    failing = sum(r.counts(strict) for r in results)
    warned = n[FAIL] - failing
    parts = [
        f"{len(results)} checks",
        f"{n[PASS]} passed",
        f"{failing} failed",
        f"{n[SKIP]} skipped",
        f"{n[KNOWN]} known failures",
    ]
    if warned:
        parts.append(f"{warned} SHOULD failures (fail with --strict)")
    verdict = "FAILED" if failing else "OK"
    return f"{verdict}: " + ", ".join(parts) + f" in {seconds:.1f} s"


def write_console(results: list[Result], strict: bool, out: TextIO) -> None:
    for r in results:
        print(line(r, strict), file=out)


def junit(results: list[Result], strict: bool, seconds: float, target: str) -> bytes:
    """JUnit XML: one testsuite, one testcase per check (classname = SPEC section)."""
    n = Counter(r.status for r in results)
    failing = sum(r.counts(strict) for r in results)
    suite = ET.Element(
        "testsuite",
        {
            "name": "liaotian-conformance",
            "tests": str(len(results)),
            "failures": str(failing),
            "errors": "0",
            "skipped": str(n[SKIP] + n[KNOWN] + (n[FAIL] - failing)),
            "time": f"{seconds:.3f}",
            "hostname": target,
        },
    )
    for r in results:
        c = r.check
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": f"SPEC.{c.section}",
                "name": f"{c.name}: {c.title} [{c.level}]",
                "time": f"{r.seconds:.3f}",
            },
        )
        if r.status == FAIL and r.counts(strict):
            ET.SubElement(case, "failure", {"message": r.detail[:500]}).text = r.detail
        elif r.status in (SKIP, KNOWN) or r.status == FAIL:
            ET.SubElement(case, "skipped", {"message": r.detail[:500]})
    return bytes(ET.tostring(suite, encoding="utf-8", xml_declaration=True))
