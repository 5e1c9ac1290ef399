"""The nine stress test types of the original AI-call-assistant framework, as voiceload runs them.

Each (but http_basic, a plain reachability check) is a run of phone callers under a load shape: how
many calls, for how long each, and in which pattern. After the run, `result_fields` reads the merged
report for what the test type is about (the largest batch that held, the simulated errors survived,
the bottlenecks, ...). Pure: no I/O here.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from orchestrator.arg_types import positive_float, positive_int

SUCCESS_FLOOR = 80.0  # % of calls that succeeded: the seed's "adequate" line
SETTLE_S = 4  # beyond a call's duration, so a batch's calls finish inside its step
BATCH_GAP_S = 1.0  # high_concurrency: no calls between two batches, so the next one starts afresh
# the types that place a number of calls (-n): each caller places exactly one, so N calls are N calls
ONE_CALL_EACH = ("throughput", "resilience", "high_concurrency", "resource_monitoring")


@dataclass(frozen=True)
class TestType:
    name: str
    purpose: str
    options: tuple[str, ...]  # the run_load_tests options it reads


TEST_TYPES: dict[str, TestType] = {t.name: t for t in (
    TestType("http_basic", "are health and docs reachable? 10 requests, no load", ()),
    TestType("throughput", "N calls streaming audio chunks of a given size at a given interval",
             ("num_calls", "duration", "chunk_size", "interval")),
    TestType("resilience", "N calls while the generator injects faults on purpose (skipped chunks, malformed "
             "frames, abrupt disconnects mid-turn, reconnects): do calls still complete?",
             ("num_calls", "duration", "error_rate")),
    TestType("load", "batches of calls growing by --increment up to --max-batch: the largest batch with >= 80% of its "
             "calls succeeding", ("max_batch", "increment", "duration")),
    TestType("high_concurrency", "N calls placed in batches of --batch-size concurrent calls started together; "
             "results per batch", ("num_calls", "batch_size", "duration", "chunk_size", "interval")),
    TestType("wave_pattern", "calls rising to --peak-calls and falling back, --num-waves times",
             ("peak_calls", "num_waves", "wave_duration", "chunk_size", "interval")),
    TestType("burst_pattern", "bursts of --burst-size calls ramped up in --ramp-up-ms, with rests between",
             ("burst_size", "num_bursts", "ramp_up_ms", "rest_seconds", "duration")),
    TestType("stability", "base and peak call levels alternating for --test-duration-minutes",
             ("test_duration_minutes", "base_calls", "peak_calls", "chunk_size", "interval")),
    TestType("resource_monitoring", "N calls while the target's and the generator's processes are sampled: "
             "CPU, memory, threads, open files; names the bottleneck", ("num_calls", "duration", "monitor_interval")),
)}


def add_test_type_options(parser: argparse.ArgumentParser) -> None:
    """The framework's options, with its defaults."""
    group = parser.add_argument_group("test types (--test-type), with the stress framework's options and defaults")
    group.add_argument("--test-type", choices=list(TEST_TYPES), help="run one stress test type instead of a suite: "
                       + "; ".join(f"{t.name}: {t.purpose}" for t in TEST_TYPES.values()).replace("%", "%%"))
    group.add_argument("-n", "--num-calls", type=positive_int, default=3, help="concurrent calls (default 3)")
    group.add_argument("-d", "--duration", type=positive_float, default=5.0, help="seconds each call lasts (default 5)")
    group.add_argument("-c", "--chunk-size", type=positive_float, help="KB of wire audio per chunk sent (default: real "
                       "time for --interval, else the profile's own 20 ms frames; 1 KB = 1024 bytes. Real time is 32 "
                       "bytes/ms for 16 kHz PCM16 and 8 bytes/ms for 8 kHz mu-law, so the seed's 2 KB every 200 ms runs "
                       "1.28x real time on twilio-media and 0.32x on the PCM profiles; the report says which)")
    group.add_argument("--interval", type=positive_float, help="milliseconds between chunks (default: real time for "
                       "--chunk-size, else the profile's 20 ms frames)")
    group.add_argument("--batch-size", type=positive_int, default=10, help="high_concurrency: calls started together in "
                       "each batch (default 10; -n calls in all, the last batch holds what is left)")
    group.add_argument("--error-rate", type=float, default=0.2, help="resilience: chance of an injected fault per "
                       "turn, 0-1 (default 0.2)")
    group.add_argument("--max-batch", type=positive_int, default=10, help="load: largest batch of calls (default 10)")
    group.add_argument("--increment", type=positive_int, default=2, help="load: calls added per batch (default 2)")
    group.add_argument("--peak-calls", type=positive_int, default=10, help="wave_pattern/stability: calls at the peak "
                       "(default 10)")
    group.add_argument("--num-waves", type=positive_int, default=3, help="wave_pattern: waves (default 3)")
    group.add_argument("--wave-duration", type=positive_float, default=10.0, help="wave_pattern: seconds per wave "
                       "(default 10)")
    group.add_argument("--burst-size", type=positive_int, default=10, help="burst_pattern: calls per burst (default 10)")
    group.add_argument("--num-bursts", type=positive_int, default=3, help="burst_pattern: bursts (default 3)")
    group.add_argument("--ramp-up-ms", type=positive_float, default=500.0, help="burst_pattern: milliseconds to start "
                       "a burst's calls (default 500)")
    group.add_argument("--rest-seconds", type=float, default=5.0, help="burst_pattern: seconds between bursts (default 5)")
    group.add_argument("--test-duration-minutes", type=positive_float, default=5.0, help="stability: total minutes "
                       "(default 5)")
    group.add_argument("--base-calls", type=positive_int, default=3, help="stability: calls in the base phases (default 3)")


def validate(args: argparse.Namespace) -> str | None:
    """One line about the first bad test-type option, or None."""
    if not 0.0 <= args.error_rate <= 1.0:
        return f"--error-rate must be within 0..1, got {args.error_rate:g}"
    if args.rest_seconds < 0:
        return f"--rest-seconds must be 0 or more, got {args.rest_seconds:g}"
    if args.test_type == "load" and args.increment > args.max_batch:
        return f"--increment ({args.increment}) must not exceed --max-batch ({args.max_batch})"
    if args.test_type == "stability" and args.base_calls >= args.peak_calls:
        return f"--base-calls ({args.base_calls}) must be below --peak-calls ({args.peak_calls})"
    return None


def shape_options(args: argparse.Namespace) -> dict[str, object]:
    """The Locust shape (and its options) that gives the test type's calls over time."""
    name, call_s = args.test_type, args.duration
    if name == "load":
        return {"shape": "ramp", "ramp_start_users": args.increment, "ramp_increment": args.increment,
                "ramp_max_users": args.max_batch, "ramp_step_duration": call_s + SETTLE_S}
    if name == "wave_pattern":
        return {"shape": "wave", "wave_peak_users": args.peak_calls, "wave_valley_users": max(1, args.peak_calls // 5),
                "waves": args.num_waves, "wave_duration": args.wave_duration}
    if name == "burst_pattern":
        return {"shape": "burst", "burst_users": args.burst_size, "bursts": args.num_bursts,
                "burst_ramp_up_ms": args.ramp_up_ms, "burst_hold": call_s + args.ramp_up_ms / 1000.0 + SETTLE_S,
                "burst_rest": args.rest_seconds}
    if name == "stability":
        total_s = args.test_duration_minutes * 60.0
        return {"shape": "stability", "stability_base_users": args.base_calls, "stability_peak_users": args.peak_calls,
                "stability_minutes": args.test_duration_minutes, "stability_phase": max(10.0, total_s / 6)}
    if name == "high_concurrency":
        return {"shape": "batches", "batch_calls": args.num_calls, "batch_size": args.batch_size,
                "batch_hold": call_s + SETTLE_S, "batch_gap": BATCH_GAP_S}
    # throughput, resilience, resource_monitoring: N calls held for one call's time
    return {"shape": "sustained", "sustained_users": args.num_calls, "sustained_duration": call_s + SETTLE_S}


def stream_fields(counters: dict) -> dict:
    """Audio actually streamed: chunks, bytes, and how its pace compares with real time."""
    audio_ms, wall_ms = counters.get("audio_ms_sent", 0), counters.get("audio_stream_ms", 0)
    ratio = round(audio_ms / wall_ms, 3) if wall_ms else None
    pace = None if ratio is None else ("real time" if abs(ratio - 1.0) <= 0.05 else
                                       "faster than real time" if ratio > 1.0 else "slower than real time")
    return {"audio_chunks_sent": counters.get("audio_chunks_sent", 0), "audio_bytes_sent": counters.get("audio_bytes_sent", 0),
            "real_time_ratio": ratio, "pace": pace}


def max_acceptable_batch(phases: list[dict]) -> int:
    """load: the largest batch (users of a step) whose success rate held the floor; 0 if none did."""
    held = [p["users"] for p in phases if p.get("success_rate") is not None and p["success_rate"] >= SUCCESS_FLOOR]
    return max(held, default=0)


def result_fields(name: str, report: dict, args: argparse.Namespace) -> dict:
    """report.json `test`: the test type, its parameters, and what it is about."""
    summary, counters = report["summary"], report.get("counters", {})
    fields: dict = {"type": name, "parameters": {o: getattr(args, o) for o in TEST_TYPES[name].options},
                    "success_rate": summary.get("success_rate")}
    phases = report.get("phases", [])
    if name == "load":
        fields["batches"] = [{"calls": p["users"], "success_rate": p["success_rate"], "voice_loop_p95": p["voice_loop_p95"]}
                             for p in phases]
        fields["max_acceptable_batch"] = max_acceptable_batch(phases)
    elif name == "resilience":
        fields["simulated_errors"] = counters.get("simulated_errors", 0)
        fields["simulated_by_kind"] = {k.removeprefix("simulated_"): v for k, v in counters.items()
                                       if k.startswith("simulated_") and k != "simulated_errors"}
        fields["calls_completed_despite_errors"] = counters.get("calls_completed_with_faults", 0)
        fields["calls_completed"] = summary.get("calls_completed", 0)
    elif name in ("throughput", "high_concurrency"):
        fields.update({"calls_started": summary.get("calls_started", 0), "calls_completed": summary.get("calls_completed", 0),
                       **stream_fields(counters)})
        if name == "high_concurrency":
            fields["batches"] = [{"batch": p["name"], "calls": p["users"], "calls_started": p.get("calls_started", 0),
                                  "calls_completed": p.get("calls_completed", 0), "calls_failed": p.get("calls_failed", 0),
                                  "success_rate": p["success_rate"], "voice_loop_p95": p["voice_loop_p95"]}
                                 for p in phases if p["name"].startswith("batch ")]
    elif name == "resource_monitoring":
        resources = report.get("resources", {})
        fields.update({"bottlenecks": resources.get("bottlenecks", []), "target_peaks": resources.get("target", {}),
                       "generator_peaks": resources.get("generator", {})})
    elif name in ("wave_pattern", "burst_pattern", "stability"):
        rated = [p for p in phases if p.get("success_rate") is not None]
        worst = min(rated, key=lambda p: p["success_rate"], default=None)
        fields["worst_phase"] = None if worst is None else {"name": worst["name"], "success_rate": worst["success_rate"],
                                                            "voice_loop_p95": worst["voice_loop_p95"]}
    if name in ONE_CALL_EACH:
        started = summary.get("calls_started", 0)
        fields["calls_started"], fields["calls_completed"] = started, summary.get("calls_completed", 0)
        fields["call_success_rate"] = round(100.0 * fields["calls_completed"] / started, 2) if started else None
    return fields


def test_summary_line(fields: dict) -> str:
    """One line with what the test type found, under the summary table."""
    name = fields["type"]
    if name == "load":
        found = f"largest batch with >= {SUCCESS_FLOOR:g}% success: {fields['max_acceptable_batch']} calls"
    elif name == "resilience":
        found = (f"{fields['simulated_errors']} simulated errors; {fields['calls_completed_despite_errors']} calls "
                 f"completed despite them; {calls_found(fields)}")
    elif name == "resource_monitoring":
        found = calls_found(fields) + "; bottlenecks: " + ("; ".join(fields["bottlenecks"]) or "none found")
    elif name == "http_basic":
        found = "reachable: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in fields.get("reachable", {}).items())
    elif fields.get("worst_phase"):
        worst = fields["worst_phase"]
        found = f"worst phase: {worst['name']} ({worst['success_rate']}% success, voice_loop p95 {worst['voice_loop_p95']})"
    else:
        found = calls_found(fields)
        if fields.get("batches"):
            found += "; per batch: " + ", ".join(f"{b['batch']} {b['calls_completed']}/{b['calls_started']}"
                                                for b in fields["batches"])
        if fields.get("pace"):
            found += f"; audio sent {fields['pace']} (x{fields['real_time_ratio']})"
    return f"test {name}: {found}"


def calls_found(fields: dict) -> str:
    """'2 of 3 calls succeeded (66.7% of those started)'."""
    rate = fields.get("call_success_rate")
    return (f"{fields.get('calls_completed', 0)} of {fields.get('calls_started', 0)} calls succeeded"
            + (f" ({rate:g}% of those started)" if rate is not None else ""))
