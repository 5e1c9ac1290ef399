"""run_load_tests.py's exit codes (docs/design.md, Exit codes) and how a report maps onto them."""

from __future__ import annotations

import sys

EXIT_PASS, EXIT_FAIL, EXIT_BAD_INPUT, EXIT_UNREACHABLE, EXIT_GENERATOR = 0, 1, 2, 3, 4


def fail_input(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def exit_code_for(report: dict, strict: bool) -> int:
    summary = report.get("summary", {})
    verdict = summary.get("verdict")
    if verdict == "fail" or (verdict == "warn" and strict):
        return EXIT_FAIL
    if not summary.get("generator_healthy", True):
        return EXIT_GENERATOR
    return EXIT_PASS
