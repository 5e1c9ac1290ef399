"""Shared value formatting for the report renderers (HTML, JUnit, console).

Every helper is total: it accepts whatever a report dict holds (numbers, strings,
``None``, garbage) and returns display text, never raising.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from config import VerdictThresholds

DASH = "–"  # shown for null / missing / non-finite values

# Verdict of a whole run and status of one SLO check, normalised.
VERDICTS = ("pass", "warn", "fail")
SLO_STATUSES = ("pass", "miss", "fail", "no_data")

# The comparison that *violates* an SLO operator (for failure messages).
_NEGATED_OP = {"<=": ">", "<": ">=", ">=": "<", ">": "<=", "==": "!=", "!=": "=="}


def as_float(value: Any) -> float | None:
    """Return ``value`` as a finite float, or ``None`` (bools and NaN/inf are not numbers)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def fmt_num(value: Any, digits: int = 1) -> str:
    """Format a measurement with ``digits`` decimals; null -> dash; non-numbers as text."""
    number = as_float(value)
    if number is not None:
        return f"{number:.{digits}f}"
    if value is None or isinstance(value, (bool, float, int)):
        return DASH
    text = str(value).strip()
    return text or DASH


def fmt_int(value: Any) -> str:
    """Format a count as an integer (``1234``); null -> dash."""
    number = as_float(value)
    if number is None:
        return fmt_num(value)
    return f"{int(round(number))}"


def fmt_pct(value: Any) -> str:
    """Format a percentage already on a 0-100 scale (``99.2%``); null -> dash."""
    number = as_float(value)
    return DASH if number is None else f"{number:.1f}%"


def fmt_compact(value: Any) -> str:
    """Shortest faithful number text (``700`` for 700.0, ``0.5``); null -> dash."""
    number = as_float(value)
    if number is None:
        return fmt_num(value)
    return f"{number:g}" if abs(number) < 1e15 else f"{number:.0f}"


def fmt_bool(value: Any, yes: str = "yes", no: str = "no") -> str:
    """Format a tri-state flag: True/False/None -> yes/no/dash."""
    if value is True:
        return yes
    if value is False:
        return no
    return DASH


def text(value: Any) -> str:
    """Plain display text for an untrusted scalar; null/empty -> dash."""
    if value is None:
        return DASH
    out = str(value)
    return out if out.strip() else DASH


def verdict_of(summary: Mapping[str, Any] | None) -> str:
    """Normalised run verdict: ``pass``/``warn``/``fail`` or ``unknown``."""
    raw = str((summary or {}).get("verdict") or "").strip().lower()
    return raw if raw in VERDICTS else "unknown"


def slo_status(entry: Mapping[str, Any]) -> str:
    """Normalised SLO status; derived from ``passed`` when ``status`` is absent or odd."""
    raw = str(entry.get("status") or "").strip().lower().replace("-", "_").replace(" ", "_")
    if raw in ("nodata", "no_samples"):
        raw = "no_data"
    if raw in SLO_STATUSES:
        return raw
    passed = entry.get("passed")
    if passed is True:
        return "pass"
    if passed is False:
        return "fail"
    return "no_data"


def negate_op(op: Any) -> str:
    """The operator that describes a violation of ``op`` (``<=`` -> ``>``)."""
    key = str(op or "").strip()
    return _NEGATED_OP.get(key, f"not {key}" if key else "vs")


def as_mapping(value: Any) -> dict[str, Any]:
    """``value`` if it is a mapping, else an empty dict."""
    return dict(value) if isinstance(value, Mapping) else {}


def as_list(value: Any) -> list[Any]:
    """``value`` as a list if it is a list/tuple, else an empty list."""
    return list(value) if isinstance(value, (list, tuple)) else []


def as_records(value: Any) -> list[dict[str, Any]]:
    """The mapping items of a list (other items dropped)."""
    return [dict(item) for item in as_list(value) if isinstance(item, Mapping)]


def fmt_groups(run: Mapping[str, Any]) -> str:
    """'api 15 s (2 users, requests 100.0%) · websocket 45 s (5 users, calls 95.0%), one after another', or a dash."""
    groups = as_records(run.get("groups"))
    if not groups:
        return DASH
    parts = [f"{text(g.get('name'))} {fmt_int(g.get('run_time_s'))} s ({fmt_int(g.get('users'))} users"
             + (f", {g['success_basis']} {fmt_pct(g.get('success_rate'))})" if g.get("success_basis") else ")") for g in groups]
    return " · ".join(parts) + (", in parallel" if run.get("parallel") else ", one after another")


def threshold(thresholds: Mapping[str, Any], name: str) -> float:
    """A verdict threshold as the report states it (report.json `thresholds`), else its default."""
    value = as_float(as_mapping(thresholds).get(name))
    return value if value is not None else float(getattr(VerdictThresholds(), name))


def generator_limits(thresholds: Mapping[str, Any]) -> tuple[float, float]:
    """(frame lateness p99 limit in ms, CPU limit in %) that judged the generator's health."""
    return threshold(thresholds, "generator_lateness_p99_ms"), threshold(thresholds, "generator_cpu_percent")
