"""How many concurrent real-time calls does one generator process sustain?

    python bench/capacity.py [--steps 50,100,150,200,250] [--measure-s 10]

Starts the local stack (redis-server + the reference target in fixed-latency mode with ample LLM
slots, one uvicorn process), then for each step runs that many TelephonyCaller users (ACS, 16 kHz,
20 ms frames, agent audio coming back and parsed for first-audible detection and jitter) inside
THIS process with Locust's library runner, lets them settle, and measures frame_send_lateness over
a steady window. Prints a table and, last, `calls_per_process_p99_5ms=N`: the largest step whose
p99 lateness stayed at or under 5 ms.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from locust.env import Environment  # noqa: E402  (imports gevent and monkey-patches)

import gevent  # noqa: E402
import psutil  # noqa: E402

from config import load_settings  # noqa: E402
from metrics.recorder import RECORDER  # noqa: E402
from orchestrator.local_stack import LocalStack  # noqa: E402
from users.runtime import set_settings  # noqa: E402
from users.voice import TelephonyCaller  # noqa: E402
from voice.gc_tuning import tune_gc_for_realtime  # noqa: E402

TARGET_ARGS = ["--latency-mode", "fixed", "--llm-slots", "100000", "--log-level", "error"]


def measure(host: str, calls: int, spawn_rate: float, settle_s: float, measure_s: float) -> dict:
    environment = Environment(user_classes=[TelephonyCaller], host=host, stop_timeout=2)
    runner = environment.create_local_runner()
    tune_gc_for_realtime()  # as the locustfile does at test start
    runner.start(calls, spawn_rate=spawn_rate)
    gevent.sleep(calls / spawn_rate + settle_s)
    RECORDER.drain()  # forget the ramp
    process = psutil.Process()
    process.cpu_percent()
    started = time.perf_counter()
    gevent.sleep(measure_s)
    elapsed = time.perf_counter() - started
    cpu = process.cpu_percent()
    window = RECORDER.drain()
    runner.quit()
    gevent.sleep(0.5)
    from metrics.histogram import LatencyHistogram

    lateness = LatencyHistogram.from_wire(window["metrics"]["frame_send_lateness"]) if "frame_send_lateness" in window["metrics"] else LatencyHistogram()
    # lateness is merged into the recorder at the end of each call; per-frame counts arrive with the observer
    voice = LatencyHistogram.from_wire(window["metrics"]["voice_loop"]) if "voice_loop" in window["metrics"] else LatencyHistogram()
    return {"calls": calls, "lateness": lateness, "voice": voice, "cpu": cpu, "elapsed": elapsed,
            "failures": sum(window["metric_failures"].values()), "dropped": window["counters"].get("ws_dropped", 0)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", default="50,100,150,200,250", help="concurrent calls to try, ascending")
    parser.add_argument("--spawn-rate", type=float, default=25.0, help="calls started per second while ramping")
    parser.add_argument("--settle-s", type=float, default=4.0, help="seconds after the ramp before measuring")
    parser.add_argument("--measure-s", type=float, default=10.0, help="length of the measured window")
    args = parser.parse_args()
    steps = [int(s) for s in args.steps.split(",")]

    with tempfile.TemporaryDirectory() as logs, LocalStack(Path(logs), TARGET_ARGS) as stack:
        set_settings(load_settings({"api_base_url": stack.base_url, "turns_per_call": 50, "barge_in_rate": 0.0,
                                    "dtmf_rate": 0.0, "think_time_ms": 300}, env={}))
        print("target: reference agent, 1 uvicorn process, fixed latencies, 100000 LLM slots (not the limit)")
        print(f"generator: this process, Locust LocalRunner, TelephonyCaller (ACS JSON, 16 kHz, 20 ms frames); "
              f"ramp {args.spawn_rate:g}/s, settle {args.settle_s:g} s, measure {args.measure_s:g} s per step\n")
        print(f"{'calls':>6} {'late p50':>9} {'late p99':>9} {'late max':>9} {'frames/s':>9} {'cpu %':>6} "
              f"{'voice_loop p50':>15} {'failures':>8}")
        measure(stack.base_url, 20, args.spawn_rate, 1.0, 3.0)  # warm-up: imports, encodings, the target's caches
        best = 0
        for calls in steps:
            result = measure(stack.base_url, calls, args.spawn_rate, args.settle_s, args.measure_s)
            late = result["lateness"]
            p50, p99 = late.percentiles((50, 99))
            fps = late.total / result["elapsed"]
            voice_p50 = result["voice"].percentile(50)
            print(f"{calls:>6} {p50 or 0:>9.2f} {p99 or 0:>9.2f} {late.max or 0:>9.2f} {fps:>9.0f} {result['cpu']:>6.0f} "
                  f"{voice_p50 or 0:>15.1f} {result['failures'] + result['dropped']:>8}", flush=True)
            if p99 is not None and p99 <= 5.0 and fps >= 0.9 * calls * 50:
                best = calls
            elif p99 is not None and p99 > 20.0:
                break
        print(f"\ncalls_per_process_p99_5ms={best}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
