"""A Flask app on a database of its own, empty and dropped afterwards: for migration tests,
which must start from nothing and cannot share the suite's migrated database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from dashboard import create_app
from dashboard.models import db
from tests.conftest import base_config


@contextmanager
def scratch_app(database_url: str, suffix: str) -> Iterator:
    """Yields the app inside its app context; `suffix` keeps each test's database apart."""
    url = make_url(database_url)
    scratch = f"{url.database}_{suffix}"
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{scratch}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{scratch}"'))
    try:
        app = create_app(base_config(url.set(database=scratch).render_as_string(False)))
        with app.app_context():
            try:
                yield app
            finally:
                db.session.remove()
                db.engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
        admin.dispose()
