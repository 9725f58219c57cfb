"""The test harness's own server process (tests/servers.py)."""

from __future__ import annotations

import requests

from tests.servers import running_server

PIPE_BUFFER = 64 * 1024


def test_a_server_that_logs_more_than_a_pipe_holds_keeps_answering(migrated):
    """Its log went to a pipe nobody read: after ~64 KiB every logging call blocked and the
    next request hung (a read timeout in the parallel login test, now and then in CI). Each
    refused API call logs about 1 KB; two pipes' worth must all be answered."""
    with running_server(migrated) as server:
        statuses = {requests.get(server.url + "/api/bots", timeout=10).status_code
                    for _ in range(200)}
        log = server.log_text()
    assert statuses == {401}
    assert len(log) > 2 * PIPE_BUFFER
    assert log.count('"msg": "GET /api/bots 401"') == 200
