"""`make run`: everything a new developer needs, started with one command.

Without DATABASE_URL it uses the embedded PostgreSQL under instance/ (kept between runs);
without HUMMINGBOT_API_URL it starts the Hummingbot simulator with a few demo bots. Then it
applies the migrations, creates the first admin on an empty database (printing the password
once) and serves the dashboard on 127.0.0.1:$PORT.
"""

from __future__ import annotations

import os
import signal
import sys


def start_simulator_if_needed() -> None:
    if os.environ.get("HUMMINGBOT_API_URL"):
        print(f"Hummingbot API: {os.environ['HUMMINGBOT_API_URL']}")
        return
    from .simulator.server import start_simulator

    port = int(os.environ.get("SIMULATOR_PORT", "8001"))
    # The real server's default credentials: the simulator is local and for development only.
    # Realistic: the real server's delays (a new bot listed after a moment, 15 s archives...).
    simulator = start_simulator("127.0.0.1", port, username="admin", password="admin",  # noqa: S106
                                seed_demo=True, realistic=True)
    os.environ["HUMMINGBOT_API_URL"] = simulator.url
    os.environ["HUMMINGBOT_API_USERNAME"] = simulator.username
    os.environ["HUMMINGBOT_API_PASSWORD"] = simulator.password
    print(f"Hummingbot API: simulator on {simulator.url} (control: {simulator.control_url}/)")


def _stop_like_ctrl_c(_signum, _frame) -> None:
    raise KeyboardInterrupt


def main() -> int:
    if os.environ.get("APP_ENV") == "production":
        print("make run is for development; production runs gunicorn (see README).")
        return 2
    start_simulator_if_needed()

    from flask_migrate import upgrade

    from . import create_app
    from .cli import first_admin_banner
    from .users import create_first_admin

    app = create_app()
    with app.app_context():
        upgrade()
        password = create_first_admin()
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
