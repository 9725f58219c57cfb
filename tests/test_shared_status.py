"""One status call per server per period for the whole deployment (shared_status.py): two
dashboard processes on one database and one simulator."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from dashboard.shared_status import LOCK_CLASS
from tests.conftest import TEST_PASSWORD
from tests.servers import Browser, ServerProcess, running_server

pytestmark = pytest.mark.slow

STATUS = "/bot-orchestration/status"


def status_calls(simulator) -> int:
    return simulator.request_count("GET", STATUS)


def wait_for(condition, what: str, seconds: float = 30.0) -> None:
    """Waits (bounded) for something another process does; asserts nothing about time."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)


def test_two_processes_make_one_status_call_per_period(committed_app, migrated, server_env,
                                                       simulator):
    env = {**server_env, "STATUS_SHARED": "true", "STATUS_CACHE_SECONDS": "60"}
    with running_server(migrated, **env) as one, running_server(migrated, **env) as two:
        first = Browser(one.url).login("admin", TEST_PASSWORD)
        second = Browser(two.url).login("admin", TEST_PASSWORD)
        simulator.reset_counts()
        for browser in (first, second, first, second):
            page = browser.get("/api/bots")
            assert page.json()["hummingbot"]["reachable"] is True
        assert status_calls(simulator) == 1  # per process, it was two


def test_when_the_leader_dies_another_process_takes_over(committed_app, migrated,
                                                         server_env, simulator):
    # A long read timeout: the leader's call is held by the slow simulator until it is killed.
    env = {**server_env, "STATUS_SHARED": "true", "HUMMINGBOT_READ_TIMEOUT": "60",
           "STATUS_WAIT_SECONDS": "0.2"}
    leader = ServerProcess(migrated, **env).start()
    try:
        with running_server(migrated, **env) as other:
            first = Browser(leader.url).login("admin", TEST_PASSWORD)
            second = Browser(other.url).login("admin", TEST_PASSWORD)
            assert first.get("/bots").status_code == 200  # the first answer, shared
            simulator.reset_counts()
            simulator.set_fault("slow", seconds=600, path=STATUS)
            assert first.get("/bots").status_code == 200  # answers; its call is held
            wait_for(lambda: status_calls(simulator) == 1, "the leader's call arrives")

            # The other process shows the leader's last answer and does not call.
            assert second.get("/bots").status_code == 200
            assert status_calls(simulator) == 1

            leader.kill()
            with committed_app.app_context():
                engine = sa.create_engine(committed_app.config["SQLALCHEMY_DATABASE_URI"])
                with engine.connect() as conn:
                    def released():
                        return not conn.execute(sa.text(
                            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                            "AND classid::bigint = :cls AND granted"),
                            {"cls": LOCK_CLASS}).scalar()
                    wait_for(released, "the killed leader's lock is released")
                    before = conn.execute(sa.text(
                        "SELECT fetched_at FROM status_snapshots")).scalar()
                    simulator.clear_faults()

                    # The next refresh of the survivor calls Hummingbot and shares the answer.
                    assert second.get("/bots").status_code == 200
                    assert status_calls(simulator) == 2
                    after = conn.execute(sa.text(
                        "SELECT fetched_at FROM status_snapshots")).scalar()
                    assert after > before
                engine.dispose()
    finally:
        leader.stop()
