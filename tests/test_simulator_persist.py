"""`make run`'s simulator keeps its containers in instance/, as real ones outlive a restart:
a second start shows the same bots, under the same names, in the same states."""

from __future__ import annotations

import os
import threading

import requests

from dashboard.devserver import start_simulator_if_needed
from dashboard.simulator import SimulatorState
from dashboard.simulator.persist import StateFile


def _world(state: SimulatorState) -> dict:
    """Everything the dashboard can see of the simulated server."""
    status = state.all_status()
    return {
        # status word, and which controllers report numbers (none after stop-bot)
        "status": {name: (bot["status"], sorted(c for c, report in bot["performance"].items()
                                                if report["performance"]))
                   for name, bot in status.items()},
        "running": sorted(c["name"] for c in state.containers("running", None)),
        "exited": sorted(c["name"] for c in state.containers("exited", None)),
        "runs": state.bot_runs({}, 100, 0),
        "accounts": state.accounts(),
        "configs": state.controller_configs(),
    }


def test_the_state_file_brings_back_every_container_run_and_account(tmp_path):
    before = SimulatorState(seed_demo=True)
    names = sorted(before.snapshot()["bots"])  # pmm-btc-*, sharp-grid-*, sharp-twap-*, ...
    deployed = before.deploy(instance_name="grid-x", credentials_profile="master_account",
                             controllers_config=["grid_eth_1"], body={})["unique_instance_name"]
    before.stop_bot(names[0])  # trading stopped, container up
    before.exit_bot(names[1])  # crashed: listed as exited
    before.add_account("client_new")
    before.add_log(names[2], "ERROR", "insufficient balance")
    StateFile(tmp_path / "state.json", before).save()

    after = SimulatorState()  # empty, as a new process starts
    assert StateFile(tmp_path / "state.json", after).load() is True
    world = _world(after)
    assert deployed in world["status"] and names[1] not in world["status"]
    assert world["exited"] == [names[1]]
    assert world["status"][names[0]][1] == []  # still stopped trading
    assert after.bot_status(names[2])["error_logs"][-1]["msg"] == "insufficient balance"
    # A deployed bot reports again once the server is back (it was warming up when saved).
    assert world["status"][deployed] == ("running", ["grid_eth_1"])
    expected = _world(before)
    expected["status"][deployed] = world["status"][deployed]
    assert world == expected


def test_a_missing_or_unreadable_file_is_a_first_start(tmp_path):
    state = SimulatorState()
    assert StateFile(tmp_path / "none.json", state).load() is False
    (tmp_path / "bad.json").write_text('{"accounts": ')
    assert StateFile(tmp_path / "bad.json", state).load() is False
    assert state.snapshot()["bots"] == {}  # untouched


def test_make_run_twice_shows_the_same_bots_running(tmp_path, monkeypatch):
    """Regression: each `make run` seeded new demo bots (new timestamps), so the definitions
    adopted the first time read Missing the second time."""
    # start_simulator_if_needed points HUMMINGBOT_API_URL at what it started: a copy of the
    # environment keeps that out of the other tests.
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HUMMINGBOT_API_")}
    monkeypatch.setattr(os, "environ", environ)
    path = tmp_path / "instance" / "simulator-state.json"

    def live_names() -> dict[str, str]:
        environ.pop("HUMMINGBOT_API_URL", None)  # a new process, as the first one had it
        environ["SIMULATOR_PORT"] = "0"
        simulator, state_file = start_simulator_if_needed(path)
        try:
            reply = requests.get(simulator.url + "/bot-orchestration/status", timeout=5,
                                 auth=(simulator.username, simulator.password))
            return {name: bot["status"] for name, bot in reply.json()["data"].items()}
        finally:
            simulator.stop()
            state_file.close()  # what make run does at exit

    first = live_names()
    assert len(first) == 4 and path.exists()
    second = live_names()
    assert second == first
    assert set(second.values()) <= {"running", "stopped"}
    # Closed with its simulator: no saver thread left writing into a deleted directory.
    assert not [t for t in threading.enumerate() if t.name == "simulator-state-file"]
