"""Test-only Locust user that hogs the generator: it blocks the gevent loop with busy work, so every
caller in the process sends its frames late. Used to prove generator health is detected."""

import time

from locust import User, constant, task


class LoopBlocker(User):
    wait_time = constant(0.05)

    @task
    def hog(self) -> None:
        until = time.perf_counter() + 0.05  # 50 ms without yielding to gevent
        while time.perf_counter() < until:
            pass
