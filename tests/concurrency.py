"""Run work in threads released together, for races that must be real."""

from __future__ import annotations

import threading
import time


def run_together(count: int, work, timeout: float = 30) -> list:
    """Run `work(i)` in `count` threads released at once; re-raise the first failure. All must
    finish within `timeout` seconds (a result is never silently missing)."""
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list = []

    def run(i):
        try:
            barrier.wait(10)
            results[i] = work(i)
        except Exception as exc:  # collected and re-raised in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    running = sum(thread.is_alive() for thread in threads)
    if running:
        raise AssertionError(f"{running} of {count} threads still running after {timeout} s")
    if errors:
        raise errors[0]
    return results
