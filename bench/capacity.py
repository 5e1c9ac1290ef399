"""How much load does one generator process make?

    python bench/capacity.py [--steps 50,100,150,200,250] [--measure-s 10] [--http-users 20]

Starts the local stack (redis-server + the reference target in fixed-latency mode with ample LLM
slots, one uvicorn process), then:

1. Calls: for each step, that many TelephonyCaller users (ACS, 16 kHz, 20 ms frames, agent audio
   coming back and parsed for first-audible detection and jitter) run inside THIS process with
   Locust's library runner; after a settle time, frame_send_lateness is measured over a steady window,
   with this process's CPU and the target's (so a saturated target shows).
2. HTTP: voiceload's ApiUser (its health request only, recorded exactly as in a run) and a plain Locust
   FastHttpUser hitting the same endpoint, each alone with no wait time: requests/s and generator CPU
   per request; the ratios are voiceload's overhead.

Prints both tables, `calls_per_process_p99_20ms=N` and, last, `calls_per_process_p99_5ms=N`: the
largest steps whose p99 lateness stayed at or under 20 and 5 ms.
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
from locust import constant, task  # noqa: E402
from locust.contrib.fasthttp import FastHttpUser  # noqa: E402

from config import load_settings  # noqa: E402
from locust_adapters import plugin  # noqa: E402
from users.api import ApiUser  # noqa: E402
from orchestrator.local_stack import LocalStack  # noqa: E402
from users.run_context import RECORDER, attach  # noqa: E402
from users.runtime import get_settings, set_settings  # noqa: E402
from users.voice import TelephonyCaller  # noqa: E402
from voice.gc_tuning import tune_gc_for_realtime  # noqa: E402

TARGET_ARGS = ["--latency-mode", "fixed", "--llm-slots", "100000", "--log-level", "error"]


class PlainHealthUser(FastHttpUser):
    """Locust as it comes: one FastHttpUser, one GET, nothing recorded beyond Locust's own stats."""

    wait_time = constant(0)

    @task
    def health(self) -> None:
        self.client.get(get_settings().target_profile.health.path, name="health")


class HealthApiUser(ApiUser):
    """voiceload's ApiUser limited to the same request (its mix hits costlier endpoints), no wait."""

    wait_time = constant(0)

    def on_start(self) -> None:
        super().on_start()
        self.actions, self.weights = [self.health], [1]


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def measure_http(host: str, user_class, users: int, measure_s: float, target: psutil.Process) -> dict:
    """Requests/s and generator CPU per request of `users` users of `user_class`, alone in this process."""
    environment = Environment(user_classes=[user_class], host=host, stop_timeout=2)
    runner = environment.create_local_runner()
    if user_class is HealthApiUser:  # recorded exactly, as a voiceload run does
        attach(environment)
        plugin.install(environment, lambda *_: None)
    runner.start(users, spawn_rate=users)
    gevent.sleep(2.0)
    me = psutil.Process()
    requests_before, cpu_before = environment.stats.total.num_requests, cpu_seconds(me)
    target.cpu_percent()
    started = time.perf_counter()
    gevent.sleep(measure_s)
    elapsed = time.perf_counter() - started
    requests = environment.stats.total.num_requests - requests_before
    cpu = cpu_seconds(me) - cpu_before
    target_cpu = target.cpu_percent()
    failures = environment.stats.total.num_failures
    runner.quit()
    RECORDER.drain()
    gevent.sleep(0.5)
    return {"rps": requests / elapsed, "cpu_us": 1e6 * cpu / max(1, requests), "cpu": 100 * cpu / elapsed,
            "target_cpu": target_cpu, "failures": failures}


def measure(host: str, calls: int, spawn_rate: float, settle_s: float, measure_s: float, target: psutil.Process) -> dict:
    environment = Environment(user_classes=[TelephonyCaller], host=host, stop_timeout=2)
    runner = environment.create_local_runner()
    tune_gc_for_realtime()  # as the locustfile does at test start
    runner.start(calls, spawn_rate=spawn_rate)
    gevent.sleep(calls / spawn_rate + settle_s)
    RECORDER.drain()  # forget the ramp
    process = psutil.Process()
    process.cpu_percent()
    target.cpu_percent()
    started = time.perf_counter()
    gevent.sleep(measure_s)
    elapsed = time.perf_counter() - started
    cpu = process.cpu_percent()
    target_cpu = target.cpu_percent()
    window = RECORDER.drain()
    runner.quit()
    gevent.sleep(0.5)
    from metrics.histogram import LatencyHistogram

    lateness = LatencyHistogram.from_wire(window["metrics"]["frame_send_lateness"]) if "frame_send_lateness" in window["metrics"] else LatencyHistogram()
    # lateness is merged into the recorder at the end of each call; per-frame counts arrive with the observer
    voice = LatencyHistogram.from_wire(window["metrics"]["voice_loop"]) if "voice_loop" in window["metrics"] else LatencyHistogram()
    return {"calls": calls, "lateness": lateness, "voice": voice, "cpu": cpu, "target_cpu": target_cpu, "elapsed": elapsed,
            "failures": sum(window["metric_failures"].values()), "dropped": window["counters"].get("ws_dropped", 0)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", default="50,100,150,200,250", help="concurrent calls to try, ascending")
    parser.add_argument("--spawn-rate", type=float, default=25.0, help="calls started per second while ramping")
    parser.add_argument("--settle-s", type=float, default=4.0, help="seconds after the ramp before measuring")
    parser.add_argument("--measure-s", type=float, default=10.0, help="length of the measured window")
    parser.add_argument("--http-users", type=int, default=20, help="users of each HTTP user class (0: skip HTTP)")
    args = parser.parse_args()
    steps = [int(s) for s in args.steps.split(",")]

    with tempfile.TemporaryDirectory() as logs, LocalStack(Path(logs), TARGET_ARGS) as stack:
        set_settings(load_settings({"api_base_url": stack.base_url, "turns_per_call": 50, "barge_in_rate": 0.0,
                                    "dtmf_rate": 0.0, "think_time_ms": 300}, env={}))
        target = psutil.Process(stack.pids()["target"])
        print(f"machine: {psutil.cpu_count()} cores; target: reference agent, 1 uvicorn process, fixed latencies, "
              "100000 LLM slots (not the limit); its CPU is shown")
        print(f"generator: this process, Locust LocalRunner, TelephonyCaller (ACS JSON, 16 kHz, 20 ms frames); "
              f"ramp {args.spawn_rate:g}/s, settle {args.settle_s:g} s, measure {args.measure_s:g} s per step\n")
        print(f"{'calls':>6} {'late p50':>9} {'late p99':>9} {'late max':>9} {'frames/s':>9} {'cpu %':>6} {'target %':>8} "
              f"{'voice_loop p50':>15} {'failures':>8}")
        measure(stack.base_url, 20, args.spawn_rate, 1.0, 3.0, target)  # warm-up: imports, encodings, the target's caches
        best = {5.0: 0, 20.0: 0}
        for calls in steps:
            result = measure(stack.base_url, calls, args.spawn_rate, args.settle_s, args.measure_s, target)
            late = result["lateness"]
            p50, p99 = late.percentiles((50, 99))
            fps = late.total / result["elapsed"]
            voice_p50 = result["voice"].percentile(50)
            print(f"{calls:>6} {p50 or 0:>9.2f} {p99 or 0:>9.2f} {late.max or 0:>9.2f} {fps:>9.0f} {result['cpu']:>6.0f} "
                  f"{result['target_cpu']:>8.0f} {voice_p50 or 0:>15.1f} {result['failures'] + result['dropped']:>8}", flush=True)
            kept_pace = fps >= 0.9 * calls * 50
            for limit in best:
                if p99 is not None and p99 <= limit and kept_pace:
                    best[limit] = calls
            if p99 is None or p99 > 20.0:
                break

        if args.http_users:
            print(f"\nHTTP, {args.http_users} users each, no wait, GET health, {args.measure_s:g} s each, one after the other:")
            print(f"{'user':>28} {'requests/s':>11} {'cpu %':>6} {'cpu us/req':>11} {'target %':>8} {'failures':>8}")
            results = {}
            for label, user_class in (("plain Locust FastHttpUser", PlainHealthUser), ("voiceload ApiUser", HealthApiUser)):
                results[label] = r = measure_http(stack.base_url, user_class, args.http_users, args.measure_s, target)
                print(f"{label:>28} {r['rps']:>11.0f} {r['cpu']:>6.0f} {r['cpu_us']:>11.0f} {r['target_cpu']:>8.0f} "
                      f"{r['failures']:>8}", flush=True)
            plain, ours = results["plain Locust FastHttpUser"], results["voiceload ApiUser"]
            print(f"voiceload / plain: requests/s {ours['rps'] / plain['rps']:.2f}x, generator CPU per request "
                  f"{ours['cpu_us'] / plain['cpu_us']:.2f}x")
        print(f"\ncalls_per_process_p99_20ms={best[20.0]}")
        print(f"calls_per_process_p99_5ms={best[5.0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
