"""`make run`: everything a new developer needs, started with one command.

Without DATABASE_URL it uses the embedded PostgreSQL under instance/ (kept between runs);
without HUMMINGBOT_API_URL it starts two Hummingbot simulators with a few demo bots each: the
`default` server and a second one, `eu`, so the fleet view is what a newcomer sees. Then it
applies the migrations, creates the first admin on an empty database (printing the password
once) and serves the dashboard on 127.0.0.1:$PORT.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
from pathlib import Path

from .config import INSTANCE_PATH

SIMULATOR_STATE = INSTANCE_PATH / "simulator-state.json"
SECOND_STATE = INSTANCE_PATH / "simulator-eu-state.json"
SECOND_SERVER = "eu"
SECOND_PASSWORD = "eu-dev-password"  # noqa: S105 - a local development simulator's


def start_simulator_if_needed(state_path: Path = SIMULATOR_STATE):
    """Start the simulator unless HUMMINGBOT_API_URL points elsewhere. Its bots are kept in
    `state_path` between runs, as real containers outlive a dashboard restart; demo bots are
    seeded only when there is no saved state. Returns (simulator, state file) or None."""
    if os.environ.get("HUMMINGBOT_API_URL"):
        print(f"Hummingbot API: {os.environ['HUMMINGBOT_API_URL']}")
        return None
    from .simulator.persist import StateFile
    from .simulator.server import start_simulator
    from .simulator.state import SimulatorState

    # Realistic: the real server's delays (a new bot listed after a moment, 15 s archives...).
    state = SimulatorState(realistic=True)
    state_file = StateFile(state_path, state)
    restored = state_file.load()
    if not restored:
        state.reset(seed_demo=True)
    port = int(os.environ.get("SIMULATOR_PORT", "8001"))
    # The real server's default credentials: the simulator is local and for development only.
    simulator = start_simulator("127.0.0.1", port, username="admin", password="admin",  # noqa: S106
                                state=state)
    state_file.save()
    state_file.keep_saved()
    os.environ["HUMMINGBOT_API_URL"] = simulator.url
    os.environ["HUMMINGBOT_API_USERNAME"] = simulator.username
    os.environ["HUMMINGBOT_API_PASSWORD"] = simulator.password
    bots = ", ".join(sorted(state.snapshot()["bots"])) or "none"
    print(f"Hummingbot API: simulator on {simulator.url} (control: {simulator.control_url}/)")
    print(f"  {'bots kept from the last run' if restored else 'demo bots'} ({state_path}): "
          f"{bots}")
    if not restored:
        print("  They run without a definition: adopt them on the Recovery desk (/recovery).")
    return simulator, state_file


def start_second_simulator(state_path: Path = SECOND_STATE):
    """The second demo server (`eu`), beside the first; its own demo bots and credentials.
    Returns (simulator, state file)."""
    from .simulator.persist import StateFile
    from .simulator.server import start_simulator
    from .simulator.state import SimulatorState

    state = SimulatorState(realistic=True)
    state_file = StateFile(state_path, state)
    if not state_file.load():
        state.reset(seed_demo=True)
    port = int(os.environ.get("SECOND_SIMULATOR_PORT", "8002"))
    simulator = start_simulator("127.0.0.1", port, username="eu-admin",
                                password=SECOND_PASSWORD, state=state)
    state_file.save()
    state_file.keep_saved()
    print(f"Hummingbot API '{SECOND_SERVER}': simulator on {simulator.url}")
    return simulator, state_file


def register_second_server(simulator) -> None:
    """Add the second simulator as server `eu`, once (a later run keeps the row)."""
    from .servers import add_server, find_server

    if find_server(SECOND_SERVER) is None:
        add_server(SECOND_SERVER, simulator.url, simulator.username, simulator.password)


def _stop_like_ctrl_c(_signum, _frame) -> None:
    raise KeyboardInterrupt


def main() -> int:
    if os.environ.get("APP_ENV") == "production":
        print("make run is for development; production runs gunicorn (see README).")
        return 2
    started = start_simulator_if_needed()
    second = None
    if started is not None:
        atexit.register(started[1].close)  # the last word: what the simulator holds on Ctrl-C
        second = start_second_simulator()
        atexit.register(second[1].close)

    from flask_migrate import upgrade

    from . import create_app
    from .cli import first_admin_banner
    from .users import create_first_admin

    app = create_app()
    with app.app_context():
        upgrade()
        password = create_first_admin()
        from .servers import sync_default_server

        sync_default_server(app)
        if second is not None:
            register_second_server(second[0])
    if password is not None:
        print(first_admin_banner(password))
    port = app.config["PORT"]
    where = "embedded PostgreSQL in instance/pgdata" if not app.config["DATABASE_URL"] else \
        "DATABASE_URL"
    print(f"Bot Management on http://127.0.0.1:{port}/  (database: {where}; Ctrl-C stops)")
    # SIGTERM (a process manager, an IDE's stop button, `kill`) takes the way out Ctrl-C takes,
    # so the embedded PostgreSQL's exit handler runs and stops it: Python's default for SIGTERM
    # ends the process at once and leaves PostgreSQL running.
    signal.signal(signal.SIGTERM, _stop_like_ctrl_c)
    app.run(host="127.0.0.1", port=port, threaded=True, use_reloader=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
