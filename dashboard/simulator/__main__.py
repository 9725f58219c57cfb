"""`python -m dashboard.simulator --port 8000`: serve the simulated Hummingbot API until stopped."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from .server import start_simulator
from .state import FAULT_NAMES


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m dashboard.simulator", description="Simulated Hummingbot API server."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="API port (0 picks a free one)")
    parser.add_argument("--control-port", type=int, default=0, help="control port (0: free)")
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password", default="admin")
    parser.add_argument(
        "--fault", action="append", default=[], choices=sorted(FAULT_NAMES), help="repeatable"
    )
    parser.add_argument("--slow-seconds", type=float, default=None)
    parser.add_argument("--warmup-seconds", type=float, default=None)
    parser.add_argument("--stopping-seconds", type=float, default=None)
    parser.add_argument("--seed-demo", action="store_true", help="start with a few live bots")
    parser.add_argument(
        "--fast",
        action="store_true",
        help="no real-server delays (new bots listed at once, archives in 1 s, ...)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sim = start_simulator(
        args.host,
        args.port,
        username=args.username,
        password=args.password,
        control_port=args.control_port,
        seed_demo=args.seed_demo,
        realistic=not args.fast,
    )
    settings = {
        "slow_seconds": args.slow_seconds,
        "warmup_seconds": args.warmup_seconds,
        "stopping_seconds": args.stopping_seconds,
    }
    sim.state.configure(**{k: v for k, v in settings.items() if v is not None})
    for fault in args.fault:
        sim.state.set_fault(fault)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"Hummingbot API simulator on {sim.url} (control: {sim.control_url}/)", flush=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
