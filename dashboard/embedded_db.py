"""A PostgreSQL of our own for development, so `make run` needs nothing installed.

Its data lives under `instance/pgdata` and survives restarts. Never used in production.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

log = logging.getLogger(__name__)
# pgserver logs every pg_ctl call at INFO, on exit too: noise under each CLI command's output.
logging.getLogger("pgserver").setLevel(logging.WARNING)


def embedded_database_url(data_dir: Path) -> str:
    """Start (or join) the embedded server in `data_dir` and return its SQLAlchemy URL."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (root shells, CI); harmless here.
        warnings.simplefilter("ignore")
        import pgserver  # imported late: only development needs it

        # cleanup_mode="stop": the server stops when the last process using it exits; data stays.
        server = pgserver.get_server(data_dir, cleanup_mode="stop")
    uri = server.get_uri()  # postgresql://postgres:@/postgres?host=<socket dir>
    log.debug("embedded PostgreSQL in %s", data_dir)
    return uri.replace("postgresql://", "postgresql+psycopg2://", 1)
