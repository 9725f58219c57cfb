"""The simulator speaks the Hummingbot API as HUMMINGBOT_API.md says: real HTTP, no mocks."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from dashboard.simulator import SimulatorState, start_simulator
from dashboard.simulator.state import controller_performance

ROOT = Path(__file__).resolve().parents[1]
STATUS = "/bot-orchestration/status"
DEPLOY_CONTROLLERS = "/bot-orchestration/deploy-v2-controllers"
DEPLOY_SCRIPT = "/bot-orchestration/deploy-v2-script"
TIMESTAMPED = re.compile(r"^(?P<base>.+)-\d{8}-\d{6}$")


class TimeoutSession(requests.Session):
    """A session that never waits forever, so a broken simulator fails a test, not the run."""

    def request(self, *args, **kwargs):
        kwargs.setdefault("timeout", 5)
        return super().request(*args, **kwargs)


http = TimeoutSession()  # no credentials


@pytest.fixture
def api(simulator) -> requests.Session:
    session = TimeoutSession()
    session.auth = (simulator.username, simulator.password)
    return session


def url(simulator, path: str) -> str:
    return simulator.url + path


def deploy_controllers(simulator, api, name="pmm-btc", controllers=("pmm_btc_1",), **extra):
    body = {
        "instance_name": name,
        "credentials_profile": "master_account",
        "controllers_config": list(controllers),
        **extra,
    }
    reply = api.post(url(simulator, DEPLOY_CONTROLLERS), json=body)
    assert reply.status_code == 200, reply.text
    return reply.json()


def status_of(simulator, api, name: str) -> dict:
    return api.get(url(simulator, f"/bot-orchestration/{name}/status")).json()["data"]


def live_status(simulator, api) -> dict:
    body = api.get(url(simulator, STATUS)).json()
    assert body["status"] == "success"
    return body["data"]


def runs(simulator, api, **params) -> dict:
    reply = api.get(url(simulator, "/bot-orchestration/bot-runs"), params=params)
    assert reply.status_code == 200
    return reply.json()


# ------------------------------------------------------------------------ auth & routing
def test_health_answers_without_credentials(simulator):
    reply = http.get(url(simulator, "/"))
    assert reply.status_code == 200
    assert reply.json() == {"name": "Hummingbot API", "version": "1.0.1", "status": "running"}


def test_missing_credentials_are_401_not_authenticated(simulator):
    reply = http.get(url(simulator, STATUS))
    assert reply.status_code == 401
    assert reply.json() == {"detail": "Not authenticated"}
    assert reply.headers["WWW-Authenticate"] == "Basic"


def test_wrong_credentials_are_401_incorrect(simulator):
    reply = http.get(url(simulator, STATUS), auth=(simulator.username, "nope"))
    assert reply.status_code == 401
    assert reply.json() == {"detail": "Incorrect username or password"}
    assert reply.headers["WWW-Authenticate"] == "Basic"


def test_unknown_path_is_404_not_found_even_without_auth(simulator, api):
    for session in (api, http):
        reply = session.get(url(simulator, "/no/such/route"))
        assert reply.status_code == 404
        assert reply.json() == {"detail": "Not Found"}


def test_wrong_method_is_405(simulator, api):
    reply = api.post(url(simulator, STATUS))
    assert reply.status_code == 405
    assert reply.json() == {"detail": "Method Not Allowed"}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/accounts/", 200),
        ("/accounts", 404),
        ("/controllers/configs/", 200),
        ("/controllers/configs", 404),
        ("/scripts/configs/", 200),
        ("/scripts/configs", 404),
        ("/bot-orchestration/status", 200),
        ("/bot-orchestration/status/", 404),
        ("/bot-orchestration/bot-runs/", 404),
    ],
)
def test_trailing_slashes_are_exact_and_never_redirect(simulator, api, path, expected):
    reply = api.get(url(simulator, path), allow_redirects=False)
    assert reply.status_code == expected


def test_scripts_configs_without_slash_reads_as_a_script_named_configs(simulator, api):
    reply = api.get(url(simulator, "/scripts/configs"))
    assert reply.json() == {"detail": "Script 'configs' not found"}


# ------------------------------------------------------------------------------- deploy
def test_deploy_controllers_renames_and_echoes_what_was_sent(simulator, api):
    reply = deploy_controllers(simulator, api, controllers=["pmm_btc_1", "grid_eth_1.yml"])
    unique = reply["unique_instance_name"]
    assert TIMESTAMPED.match(unique).group("base") == "pmm-btc"
    assert reply == {
        "success": True,
        "message": f"Instance {unique} created successfully.",
        "script_config_generated": f"{unique}.yml",
        "controllers_deployed": ["pmm_btc_1", "grid_eth_1.yml"],
        "unique_instance_name": unique,
    }
    assert list(live_status(simulator, api)) == [unique]
    assert status_of(simulator, api, "pmm-btc")["status"] == "not_found"


def test_deploy_name_uses_server_local_time_and_a_clash_fails_like_docker(simulator, api):
    simulator.configure(local_time="2025-07-01T14:30:12")
    first = deploy_controllers(simulator, api)
    assert first["unique_instance_name"] == "pmm-btc-20250701-143012"

    again = deploy_controllers(simulator, api)
    assert again["success"] is False
    assert "Conflict" in again["message"]
    assert '"/pmm-btc-20250701-143012" is already in use' in again["message"]
    assert "unique_instance_name" not in again
    assert runs(simulator, api)["total"] == 1


def test_deploy_script_has_no_generated_config_and_a_null_config_name(simulator, api):
    reply = api.post(
        url(simulator, DEPLOY_SCRIPT),
        json={"instance_name": "twap", "credentials_profile": "master_account", "script": "twap"},
    ).json()
    unique = reply["unique_instance_name"]
    assert reply == {
        "success": True,
        "message": f"Instance {unique} created successfully.",
        "unique_instance_name": unique,
    }
    run = runs(simulator, api, bot_name=unique)["data"][0]
    assert run["config_name"] is None
    assert run["strategy_type"] == "script"
    assert run["strategy_name"] == "twap"
    assert json.loads(run["deployment_config"])["instance_name"] == unique


def test_deploy_missing_fields_is_a_pydantic_422(simulator, api):
    body = {"instance_name": "x", "controllers_config": ["a"]}
    reply = api.post(url(simulator, DEPLOY_CONTROLLERS), json=body)
    assert reply.status_code == 422
    assert reply.json() == {
        "detail": [
            {
                "type": "missing",
                "loc": ["body", "credentials_profile"],
                "msg": "Field required",
                "input": body,
            }
        ]
    }


def test_deploy_wrong_types_and_bad_json_are_422(simulator, api):
    reply = api.post(
        url(simulator, DEPLOY_CONTROLLERS),
        json={
            "instance_name": "x",
            "credentials_profile": "master_account",
            "controllers_config": "a",
        },
    )
    assert reply.status_code == 422
    assert reply.json()["detail"][0]["loc"] == ["body", "controllers_config"]

    reply = api.post(
        url(simulator, DEPLOY_SCRIPT), data="{nope", headers={"Content-Type": "application/json"}
    )
    assert reply.status_code == 422
    assert reply.json()["detail"][0]["type"] == "json_invalid"


@pytest.mark.parametrize("field", ["instance_name", "credentials_profile"])
def test_a_name_failing_the_pattern_is_a_text_plain_500(simulator, api, field):
    body = {"instance_name": "pmm", "credentials_profile": "master_account", field: "bad name!"}
    reply = api.post(url(simulator, DEPLOY_SCRIPT), json=body)
    assert reply.status_code == 500
    assert reply.headers["Content-Type"].startswith("text/plain")
    assert reply.text == "Internal Server Error"
    assert live_status(simulator, api) == {}


def test_deploy_for_an_unknown_profile_is_500_no_such_file(simulator, api):
    reply = api.post(
        url(simulator, DEPLOY_SCRIPT),
        json={"instance_name": "pmm", "credentials_profile": "ghost"},
    )
    assert reply.status_code == 500
    assert reply.json() == {
        "detail": "[Errno 2] No such file or directory: 'bots/credentials/ghost'"
    }


# ----------------------------------------------------------------------- status quirks
def test_new_controller_bot_is_stopped_while_warming_up_then_runs(simulator, api):
    unique = deploy_controllers(simulator, api)["unique_instance_name"]
    first = live_status(simulator, api)[unique]
    assert first["status"] == "stopped"
    assert first["performance"] == {}
    assert first["recently_active"] is False
    assert first["source"] == "docker"

    simulator.advance(1.5)
    bot = live_status(simulator, api)[unique]
    assert bot["status"] == "running"
    assert bot["recently_active"] is True
    controller = bot["performance"]["pmm_btc_1"]
    assert controller["status"] == "running"
    assert controller["custom_info"] == {}
    numbers = controller["performance"]
    for key in (
        "realized_pnl_quote",
        "unrealized_pnl_quote",
        "global_pnl_quote",
        "global_pnl_pct",
        "volume_traded",
    ):
        assert isinstance(numbers[key], float)
    assert any(line["msg"] == "Controller pmm_btc_1 started" for line in bot["general_logs"])

    simulator.advance(60)
    later = live_status(simulator, api)[unique]["performance"]["pmm_btc_1"]["performance"]
    assert later["volume_traded"] > numbers["volume_traded"]
    assert abs(later["volume_traded"] - numbers["volume_traded"]) < 1000  # slowly


def test_zero_warmup_runs_at_once(simulator, api):
    simulator.configure(warmup_seconds=0)
    unique = deploy_controllers(simulator, api)["unique_instance_name"]
    assert live_status(simulator, api)[unique]["status"] == "running"


def test_per_bot_status_has_no_source(simulator, api):
    name = simulator.seed_bot("seeded", controllers=["pmm_btc_1"])
    data = status_of(simulator, api, name)
    assert data["status"] == "running"
    assert "source" not in data


def test_script_bot_always_reads_stopped_but_recently_active(simulator, api):
    simulator.configure(warmup_seconds=0)
    reply = api.post(
        url(simulator, DEPLOY_SCRIPT),
        json={"instance_name": "simple", "credentials_profile": "master_account"},
    ).json()
    bot = live_status(simulator, api)[reply["unique_instance_name"]]
    assert bot["status"] == "stopped"
    assert bot["performance"] == {}
    assert bot["recently_active"] is True


def test_unknown_bot_status_is_http_200_not_found(simulator, api):
    reply = api.get(url(simulator, "/bot-orchestration/ghost/status"))
    assert reply.status_code == 200
    assert reply.json() == {
        "status": "success",
        "data": {"status": "not_found", "error": "Bot ghost not found"},
    }


def test_stop_bot_leaves_a_v2_bot_running_with_empty_performance(simulator, api):
    name = simulator.seed_bot("pmm", controllers=["pmm_btc_1", "grid_eth_1"])
    reply = api.post(url(simulator, "/bot-orchestration/stop-bot"), json={"bot_name": name})
    assert reply.json() == {"status": "success", "response": {"success": True}}

    bot = live_status(simulator, api)[name]
    assert bot["status"] == "running"
    assert bot["performance"] == {
        "pmm_btc_1": {"status": "running", "performance": {}, "custom_info": {}},
        "grid_eth_1": {"status": "running", "performance": {}, "custom_info": {}},
    }
    run = runs(simulator, api, bot_name=name)["data"][0]
    assert run["run_status"] == "STOPPED"
    assert run["stopped_at"] is not None
    assert run["deployment_status"] == "DEPLOYED"
    final = json.loads(run["final_status"])  # a JSON string, captured before the stop
    assert final["performance"]["pmm_btc_1"]["performance"]["volume_traded"] > 0

    reply = api.post(url(simulator, "/bot-orchestration/start-bot"), json={"bot_name": name})
    assert reply.json() == {"status": "success", "response": {"success": True}}
    resumed = live_status(simulator, api)[name]["performance"]["pmm_btc_1"]["performance"]
    assert resumed["volume_traded"] > 0


@pytest.mark.parametrize("action", ["start-bot", "stop-bot"])
def test_start_or_stop_an_unknown_bot_is_200_success_false(simulator, api, action):
    reply = api.post(url(simulator, f"/bot-orchestration/{action}"), json={"bot_name": "ghost"})
    assert reply.status_code == 200
    assert reply.json() == {
        "status": "success",
        "response": {"success": False, "message": "Bot ghost not found"},
    }


def test_start_bot_without_bot_name_is_422(simulator, api):
    reply = api.post(url(simulator, "/bot-orchestration/start-bot"), json={})
    assert reply.status_code == 422
    assert reply.json()["detail"][0]["loc"] == ["body", "bot_name"]


def test_stop_and_archive_shows_stopping_then_the_bot_is_gone_and_archived(simulator, api):
    name = simulator.seed_bot("pmm", controllers=["pmm_btc_1"])
    reply = api.post(
        url(simulator, f"/bot-orchestration/stop-and-archive-bot/{name}"),
        params={"skip_order_cancellation": "false"},
    )
    assert reply.status_code == 200
    body = reply.json()
    assert body["status"] == "success"
    assert body["message"] == f"Stop and archive process started for bot {name}"

    # Like the server: /status leaves stopping bots out; the per-bot route says `stopping`.
    assert name not in live_status(simulator, api)
    assert status_of(simulator, api, name)["status"] == "stopping"
    active = api.get(url(simulator, "/docker/active-containers")).json()
    assert name in [c["name"] for c in active]
    run = runs(simulator, api, bot_name=name)["data"][0]
    assert run["run_status"] == "STOPPED"
    assert run["deployment_status"] == "DEPLOYED"

    simulator.advance(1.5)
    assert name not in live_status(simulator, api)
    assert status_of(simulator, api, name) == {
        "status": "not_found",
        "error": f"Bot {name} not found",
    }
    active = api.get(url(simulator, "/docker/active-containers")).json()
    assert name not in [c["name"] for c in active]
    run = runs(simulator, api, bot_name=name)["data"][0]
    assert run["deployment_status"] == "ARCHIVED"
    assert run["stopped_at"] is not None


def test_stop_and_archive_an_unknown_bot_is_200_status_error(simulator, api):
    simulator.seed_bot("alive", script="simple_pmm.py")
    reply = api.post(url(simulator, "/bot-orchestration/stop-and-archive-bot/ghost"))
    assert reply.status_code == 200
    body = reply.json()
    assert body["status"] == "error"
    assert body["message"].startswith("Bot 'ghost' not found in active bots.")
    assert body["details"]["active_bots"] == ["alive"]


def test_stop_and_archive_validates_its_query(simulator, api):
    name = simulator.seed_bot("pmm", controllers=["pmm_btc_1"])
    reply = api.post(
        url(simulator, f"/bot-orchestration/stop-and-archive-bot/{name}"),
        params={"skip_order_cancellation": "maybe"},
    )
    assert reply.status_code == 422
    assert reply.json()["detail"][0]["loc"] == ["query", "skip_order_cancellation"]


def test_stopping_duration_is_configurable(simulator, api):
    simulator.configure(stopping_seconds=0)
    name = simulator.seed_bot("pmm", controllers=["pmm_btc_1"])
    api.post(url(simulator, f"/bot-orchestration/stop-and-archive-bot/{name}"))
    assert status_of(simulator, api, name)["status"] == "not_found"


def test_logs_keep_the_last_100_entries(simulator, api):
    name = simulator.seed_bot("pmm", controllers=["pmm_btc_1"])
    for i in range(250):
        simulator.state.add_log(name, "ERROR" if i % 2 else "INFO", f"line {i}")
    bot = status_of(simulator, api, name)
    assert len(bot["error_logs"]) == 100
    assert len(bot["general_logs"]) == 100
    assert bot["general_logs"][0]["msg"] == "line 50"
    assert bot["general_logs"][-1]["msg"] == "line 248"
    assert set(bot["error_logs"][0]) == {
        "level_name",
        "msg",
        "timestamp",
        "level_no",
        "logger_name",
    }
    assert bot["error_logs"][0]["level_no"] == 40


def test_history_uses_the_response_envelope(simulator, api):
    name = simulator.seed_bot("pmm", controllers=["pmm_btc_1"])
    body = api.get(url(simulator, f"/bot-orchestration/{name}/history")).json()
    assert body["status"] == "success"
    assert body["response"]["success"] is True
    assert body["response"]["data"]["data"]["status"] == 200
    body = api.get(url(simulator, "/bot-orchestration/ghost/history")).json()
    assert body == {
        "status": "success",
        "response": {"success": False, "message": "Bot ghost not found"},
    }


# ---------------------------------------------------------------------------- bot-runs
def test_bot_runs_are_json_strings_filtered_and_paged(simulator, api):
    a = simulator.seed_bot("a", controllers=["pmm_btc_1"], age_seconds=300)
    b = simulator.seed_bot("b", script="twap.py", account="client_sharp", age_seconds=200)
    c = simulator.seed_bot("c", controllers=["grid_eth_1"], account="client_sharp", age_seconds=100)
    api.post(url(simulator, "/bot-orchestration/stop-bot"), json={"bot_name": a})

    everything = runs(simulator, api)
    assert [r["bot_name"] for r in everything["data"]] == [c, b, a]  # newest first
    assert everything["total"] == 3
    assert (everything["limit"], everything["offset"]) == (100, 0)
    first = everything["data"][0]
    assert isinstance(first["deployment_config"], str)
    assert json.loads(first["deployment_config"])["credentials_profile"] == "client_sharp"
    assert first["final_status"] is None
    assert first["run_status"] == "CREATED"

    page = runs(simulator, api, limit=1, offset=1)
    assert [r["bot_name"] for r in page["data"]] == [b]
    assert page["total"] == 1  # the page's length, not a count
    assert [r["bot_name"] for r in runs(simulator, api, account_name="client_sharp")["data"]] == [
        c,
        b,
    ]
    assert [r["bot_name"] for r in runs(simulator, api, strategy_type="script")["data"]] == [b]
    assert [r["bot_name"] for r in runs(simulator, api, run_status="STOPPED")["data"]] == [a]
    assert [r["bot_name"] for r in runs(simulator, api, bot_name=c)["data"]] == [c]
    assert runs(simulator, api, deployment_status="ARCHIVED")["data"] == []
    assert runs(simulator, api, strategy_name="twap.py")["total"] == 1
    assert {r["run_status"] for r in everything["data"]} <= {"CREATED", "STOPPED", "ERROR"}


def test_delete_a_bot_run_answers_like_the_server(simulator, api):
    name = simulator.seed_bot("pmm", controllers=["pmm_btc_1"])
    run_id = runs(simulator, api, bot_name=name)["data"][0]["id"]

    reply = api.delete(url(simulator, f"/bot-orchestration/bot-runs/{run_id}"))
    assert reply.status_code == 200
    assert reply.json() == {
        "status": "success",
        "message": f"Bot run {run_id} deleted successfully",
        "bot_name": name,
        "archived_folder_deleted": False,
    }
    assert runs(simulator, api, bot_name=name)["data"] == []
    assert name in live_status(simulator, api)  # only the record goes, not the bot

    again = api.delete(url(simulator, f"/bot-orchestration/bot-runs/{run_id}"))
    assert again.status_code == 404
    assert again.json() == {"detail": f"Bot run {run_id} not found"}
    bad = api.delete(url(simulator, "/bot-orchestration/bot-runs/abc"))
    assert bad.status_code == 422


def test_bot_runs_limit_must_be_an_integer(simulator, api):
    reply = api.get(url(simulator, "/bot-orchestration/bot-runs"), params={"limit": "ten"})
    assert reply.status_code == 422


# ----------------------------------------------------------------- accounts & configs
def test_accounts_list_and_add(simulator, api):
    assert api.get(url(simulator, "/accounts/")).json() == ["master_account"]
    reply = api.post(url(simulator, "/accounts/add-account"), params={"account_name": "x_1"})
    assert reply.status_code == 201
    assert reply.json() == {"message": "Account added successfully."}
    reply = api.post(url(simulator, "/accounts/add-account"), params={"account_name": "x_1"})
    assert reply.status_code == 400
    assert reply.json() == {"detail": "Account already exists."}
    reply = api.post(url(simulator, "/accounts/add-account"))
    assert reply.status_code == 422
    assert api.get(url(simulator, "/accounts/")).json() == ["master_account", "x_1"]


def test_a_new_account_can_deploy(simulator, api):
    api.post(url(simulator, "/accounts/add-account"), params={"account_name": "client_new"})
    reply = api.post(
        url(simulator, DEPLOY_SCRIPT),
        json={"instance_name": "s", "credentials_profile": "client_new"},
    )
    assert reply.json()["success"] is True


def test_controller_config_routes(simulator, api):
    configs = api.get(url(simulator, "/controllers/configs/")).json()
    assert {c["id"] for c in configs} >= {"pmm_btc_1", "grid_eth_1"}
    assert api.get(url(simulator, "/controllers/configs/pmm_btc_1")).json()["id"] == "pmm_btc_1"
    missing = api.get(url(simulator, "/controllers/configs/nope"))
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Configuration 'nope' not found"}

    created = api.post(url(simulator, "/controllers/configs/new_one"), json={"id": "new_one"})
    assert created.status_code == 201
    assert api.get(url(simulator, "/controllers/configs/new_one")).json() == {"id": "new_one"}
    assert api.delete(url(simulator, "/controllers/configs/new_one")).status_code == 200
    assert api.delete(url(simulator, "/controllers/configs/new_one")).status_code == 404


def test_bot_controller_configs(simulator, api):
    missing = api.get(url(simulator, "/controllers/bots/ghost/configs"))
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Bot 'ghost' not found"}

    name = simulator.seed_bot("pmm", controllers=["pmm_btc_1.yml"])
    configs = api.get(url(simulator, f"/controllers/bots/{name}/configs")).json()
    assert [c["_config_name"] for c in configs] == ["pmm_btc_1"]
    assert configs[0]["trading_pair"] == "BTC-USDT"

    update = api.post(
        url(simulator, f"/controllers/bots/{name}/pmm_btc_1/config"),
        json={"total_amount_quote": 42},
    )
    assert update.status_code == 200
    configs = api.get(url(simulator, f"/controllers/bots/{name}/configs")).json()
    assert configs[0]["total_amount_quote"] == 42

    script = simulator.seed_bot("script", script="twap.py")
    assert api.get(url(simulator, f"/controllers/bots/{script}/configs")).json() == []


# -------------------------------------------------------------------------------- docker
def test_docker_lists_are_bare_and_include_the_api_itself(simulator, api):
    name = simulator.seed_bot("pmm", controllers=["pmm_btc_1"])
    active = api.get(url(simulator, "/docker/active-containers")).json()
    names = [c["name"] for c in active]
    assert "hummingbot-api" in names
    assert name in names
    assert set(active[0]) == {"id", "name", "status", "image"}
    filtered = api.get(url(simulator, "/docker/active-containers"), params={"name_filter": "PMM"})
    assert [c["name"] for c in filtered.json()] == [name]
    assert api.get(url(simulator, "/docker/exited-containers")).json() == []

    simulator.state.exit_bot(name)
    exited = api.get(url(simulator, "/docker/exited-containers")).json()
    assert [(c["name"], c["status"]) for c in exited] == [(name, "exited")]
    assert name not in live_status(simulator, api)


def test_legacy_bot_keeps_its_hummingbot_prefix_and_has_no_run(simulator, api):
    name = simulator.seed_bot("old-pmm", controllers=["pmm_btc_1"], legacy=True)
    assert name == "hummingbot-old-pmm"
    assert name in live_status(simulator, api)
    assert runs(simulator, api, bot_name=name)["data"] == []


# -------------------------------------------------------------------------------- faults
def test_error500_fault_on_and_off(simulator, api):
    simulator.set_fault("error500")
    reply = api.get(url(simulator, STATUS))
    assert reply.status_code == 500
    assert "detail" in reply.json()
    simulator.clear_faults("error500")
    assert api.get(url(simulator, STATUS)).status_code == 200


def test_error500_fault_can_be_text_plain(simulator, api):
    simulator.set_fault("error500", plain=True)
    reply = api.get(url(simulator, STATUS))
    assert reply.status_code == 500
    assert reply.text == "Internal Server Error"


def test_malformed_json_fault(simulator, api):
    simulator.set_fault("malformed_json")
    reply = api.get(url(simulator, STATUS))
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == "application/json"
    with pytest.raises(ValueError):
        reply.json()
    simulator.clear_faults()
    assert api.get(url(simulator, STATUS)).json()["status"] == "success"


def test_wrong_shape_fault_swaps_lists_and_objects(simulator, api):
    simulator.set_fault("wrong_shape")
    assert isinstance(api.get(url(simulator, STATUS)).json(), list)
    assert isinstance(api.get(url(simulator, "/accounts/")).json(), dict)
    simulator.clear_faults()
    assert isinstance(api.get(url(simulator, "/accounts/")).json(), list)


def test_unauthorized_fault_answers_401_to_everything(simulator, api):
    simulator.set_fault("unauthorized")
    for path in ("/", STATUS, "/accounts/"):
        reply = api.get(url(simulator, path))
        assert reply.status_code == 401
        assert reply.headers["WWW-Authenticate"] == "Basic"
    simulator.clear_faults()
    assert api.get(url(simulator, STATUS)).status_code == 200


def test_deploy_failure_fault_is_200_success_false_and_deploys_nothing(simulator, api):
    simulator.set_fault("deploy_failure", message="no space left on device")
    reply = api.post(
        url(simulator, DEPLOY_CONTROLLERS),
        json={
            "instance_name": "pmm",
            "credentials_profile": "master_account",
            "controllers_config": ["pmm_btc_1"],
        },
    )
    assert reply.status_code == 200
    assert reply.json() == {"success": False, "message": "no space left on device"}
    assert live_status(simulator, api) == {}  # other routes are unaffected
    assert runs(simulator, api)["data"] == []
    simulator.clear_faults()
    assert deploy_controllers(simulator, api)["success"] is True


def test_deploy_name_fault_answers_another_unique_instance_name(simulator, api):
    simulator.set_fault("deploy_name", message="someone-else-20260101-000000")
    reply = deploy_controllers(simulator, api)
    assert reply["success"] is True
    assert reply["unique_instance_name"] == "someone-else-20260101-000000"
    assert "someone-else-20260101-000000" not in live_status(simulator, api)


def test_docker_down_fault_answers_bare_error_strings(simulator, api):
    simulator.set_fault("docker_down")
    reply = api.get(url(simulator, "/docker/active-containers"))
    assert reply.status_code == 200
    assert isinstance(reply.json(), str)
    assert api.get(url(simulator, "/docker/running")).json() is False
    failed = api.post(
        url(simulator, DEPLOY_SCRIPT),
        json={"instance_name": "s", "credentials_profile": "master_account"},
    ).json()
    assert failed["success"] is False
    assert api.get(url(simulator, STATUS)).status_code == 200


def test_html_fault_serves_a_web_page(simulator, api):
    simulator.set_fault("html")
    reply = api.get(url(simulator, STATUS))
    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("text/html")
    simulator.clear_faults()
    assert reply.text != api.get(url(simulator, STATUS)).text


def test_ngrok_warning_fault_is_skipped_by_the_header(simulator, api):
    simulator.set_fault("ngrok_warning")
    page = api.get(url(simulator, STATUS))
    assert page.headers["Content-Type"].startswith("text/html")
    assert "ngrok-skip-browser-warning" in page.text
    skipped = api.get(url(simulator, STATUS), headers={"ngrok-skip-browser-warning": "1"})
    assert skipped.json()["status"] == "success"

    simulator.set_fault("ngrok_warning", ignore_header=True)
    still = api.get(url(simulator, STATUS), headers={"ngrok-skip-browser-warning": "1"})
    assert still.headers["Content-Type"].startswith("text/html")


def test_slow_fault_sleeps_past_the_timeout_then_recovers(simulator, api):
    simulator.set_fault("slow", seconds=1.0)
    with pytest.raises(requests.ReadTimeout):
        api.get(url(simulator, STATUS), timeout=(1, 0.2))
    simulator.clear_faults()
    assert api.get(url(simulator, STATUS), timeout=(1, 2)).status_code == 200


def test_unreachable_fault_refuses_connections_and_comes_back(simulator, api):
    simulator.set_fault("unreachable")
    with pytest.raises(requests.ConnectionError):
        http.get(url(simulator, "/"), timeout=2)
    # The control port is not behind faults.
    faults = http.get(simulator.control_url + "/faults", timeout=2).json()["faults"]
    assert [f["name"] for f in faults] == ["unreachable"]
    simulator.clear_faults()
    assert http.get(url(simulator, "/"), timeout=2).status_code == 200
    simulator.set_fault("unreachable")
    with pytest.raises(requests.ConnectionError):
        api.get(url(simulator, STATUS), timeout=2)
    http.delete(simulator.control_url + "/faults/unreachable", timeout=2)
    assert api.get(url(simulator, STATUS), timeout=2).status_code == 200


def test_fault_times_switches_itself_off(simulator, api):
    simulator.set_fault("error500", times=2)
    assert api.get(url(simulator, STATUS)).status_code == 500
    assert api.get(url(simulator, "/accounts/")).status_code == 500
    assert api.get(url(simulator, STATUS)).status_code == 200
    assert simulator.state.faults() == []


def test_fault_can_target_one_path_and_method(simulator, api):
    simulator.set_fault("error500", path=STATUS, method="GET")
    assert api.get(url(simulator, STATUS)).status_code == 500
    assert api.get(url(simulator, "/accounts/")).status_code == 200


def test_faults_never_touch_control_routes(simulator, api):
    for fault in ("error500", "malformed_json", "unauthorized", "html", "wrong_shape"):
        simulator.set_fault(fault)
    reply = api.get(url(simulator, "/_simulator/faults"))
    assert reply.status_code == 200
    assert len(reply.json()["faults"]) == 5


# ------------------------------------------------------------------------ control routes
def test_control_routes_over_http(simulator, api):
    control = simulator.control_url
    assert http.put(control + "/faults/slow", json={"seconds": 0.5}).status_code == 200
    assert http.get(control + "/faults").json()["faults"][0]["seconds"] == 0.5
    assert http.delete(control + "/faults").json() == {"faults": []}
    assert http.put(control + "/faults/meteor", json={}).status_code == 400

    settings = http.put(control + "/settings", json={"warmup_seconds": 0}).json()
    assert settings["warmup_seconds"] == 0

    seeded = http.post(
        control + "/bots",
        json={"name": "orphan-1", "account": "client_x", "controllers": ["pmm_btc_1"]},
    )
    assert seeded.status_code == 201
    assert seeded.json() == {"name": "orphan-1"}
    assert live_status(simulator, api)["orphan-1"]["status"] == "running"
    assert "client_x" in api.get(url(simulator, "/accounts/")).json()
    assert http.post(control + "/bots", json={"name": "orphan-1"}).status_code == 400
    assert http.post(control + "/bots", json={"name": "x", "colour": "red"}).status_code == 400
    assert http.post(control + "/bots", data="{nope").status_code == 400

    legacy = http.post(control + "/bots", json={"name": "old", "legacy": True}).json()
    assert legacy == {"name": "hummingbot-old"}

    log = http.post(control + "/bots/orphan-1/logs", json={"level": "ERROR", "msg": "boom"})
    assert log.status_code == 201
    assert status_of(simulator, api, "orphan-1")["error_logs"][-1]["msg"] == "boom"

    assert http.post(control + "/bots/orphan-1/exit").status_code == 200
    assert "orphan-1" not in live_status(simulator, api)

    counts = http.get(control + "/counts").json()["counts"]
    assert counts[f"GET {STATUS}"] == 2
    one = http.get(control + "/counts", params={"method": "GET", "path": STATUS}).json()
    assert one == {"count": 2}
    assert http.delete(control + "/counts").json() == {"counts": {}}

    overview = http.get(control + "/").json()
    assert set(overview) >= {"settings", "faults", "accounts", "bots", "request_counts"}

    reset = http.post(control + "/reset", json={"seed_demo": True}).json()
    assert reset["accounts"] == ["master_account", "client_sharp"]
    assert len(reset["bots"]) == 4


def test_a_second_simulator_cannot_share_a_port(simulator):
    port = int(simulator.url.rsplit(":", 1)[1])
    with pytest.raises(OSError):
        start_simulator("127.0.0.1", port)


def test_control_routes_are_also_on_the_api_port_without_auth(simulator):
    reply = http.get(url(simulator, "/_simulator/faults"))
    assert reply.status_code == 200


def test_request_counters_count_per_method_and_path(simulator, api):
    api.get(url(simulator, STATUS))
    api.get(url(simulator, STATUS))
    http.get(url(simulator, STATUS))  # a 401 still reached the server
    api.post(url(simulator, "/bot-orchestration/start-bot"), json={"bot_name": "x"})
    assert simulator.request_count("GET", STATUS) == 3
    assert simulator.request_count("POST", "/bot-orchestration/start-bot") == 1
    assert simulator.request_count("GET", "/accounts/") == 0
    simulator.reset_counts()
    assert simulator.request_count("GET", STATUS) == 0


def test_demo_seed_looks_alive(simulator, api):
    simulator.state.reset(seed_demo=True)
    bots = live_status(simulator, api)
    assert len(bots) == 4
    statuses = sorted(bot["status"] for bot in bots.values())
    assert statuses == ["running", "running", "stopped", "stopped"]  # 2 controller, 2 script
    assert all(bot["recently_active"] for bot in bots.values())
    accounts = {
        json.loads(r["deployment_config"])["credentials_profile"]
        for r in runs(simulator, api)["data"]
    }
    assert accounts == {"master_account", "client_sharp"}


# ------------------------------------------------------------------- state in-process
def test_state_can_be_driven_in_process_with_a_fake_clock():
    now = [100.0]
    state = SimulatorState(clock=lambda: now[0])
    reply = state.deploy(
        instance_name="pmm",
        credentials_profile="master_account",
        controllers_config=["pmm_btc_1"],
        body={"instance_name": "pmm", "credentials_profile": "master_account"},
    )
    name = reply["unique_instance_name"]
    assert state.bot_status(name)["status"] == "stopped"
    now[0] += 1.0
    assert state.bot_status(name)["status"] == "running"
    with pytest.raises(FileNotFoundError):
        state.deploy(
            instance_name="x",
            credentials_profile="nobody",
            controllers_config=None,
            body={},
        )


def test_performance_changes_slowly_and_deterministically():
    early, late = controller_performance(7, 10.0), controller_performance(7, 20.0)
    assert controller_performance(7, 10.0) == early
    assert 0 < late["volume_traded"] - early["volume_traded"] < 100


# --------------------------------------------------------------------------------- CLI
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_cli_serves_the_api_on_the_given_port():
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dashboard.simulator",
            "--port",
            str(port),
            "--username",
            "u",
            "--password",
            "p",
            "--seed-demo",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        banner = process.stdout.readline()  # printed once both listeners are up
        assert f"http://127.0.0.1:{port}" in banner, process.stderr.read()
        reply = http.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert reply.json()["status"] == "running"
        bots = http.get(f"http://127.0.0.1:{port}{STATUS}", auth=("u", "p"), timeout=5).json()[
            "data"
        ]
        assert len(bots) == 4
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.returncode == 0


@pytest.mark.slow
def test_cli_rejects_an_unknown_fault():
    result = subprocess.run(
        [sys.executable, "-m", "dashboard.simulator", "--port", "0", "--fault", "meteor"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


@pytest.mark.slow
def test_cli_starts_with_a_fault_switched_on():
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "dashboard.simulator", "--port", str(port), "--fault", "error500"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        banner = process.stdout.readline()
        control = banner.split("control: ")[1].rstrip(")/\n")
        assert http.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 500
        http.delete(control + "/faults", timeout=5)
        assert http.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)


# ------------------------------------------------------- the real server's timing (section 6)
def test_a_new_container_is_listed_only_at_the_next_container_poll(simulator, api):
    simulator.configure(appear_seconds=1.0, warmup_seconds=5.0)
    simulator.advance(0)
    name = deploy_controllers(simulator, api)["unique_instance_name"]

    assert name not in live_status(simulator, api)
    assert status_of(simulator, api, name)["status"] == "not_found"
    containers = api.get(url(simulator, "/docker/active-containers")).json()
    assert name in [c["name"] for c in containers]  # Docker has it; the server's list not yet
    assert runs(simulator, api, bot_name=name)["total"] == 1

    simulator.advance(1.0)
    assert live_status(simulator, api)[name] == {
        "status": "stopped",
        "performance": {},
        "error_logs": [],
        "general_logs": live_status(simulator, api)[name]["general_logs"],
        "recently_active": False,
        "source": "docker",
    }


def test_an_mqtt_only_bot_has_no_container_no_run_and_outlives_stop_and_archive(simulator, api):
    simulator.configure(stopping_seconds=15, container_retry_seconds=20)
    simulator.advance(0)
    name = simulator.seed_bot("elsewhere", controllers=["pmm_btc_1"], source="mqtt")
    assert live_status(simulator, api)[name]["source"] == "mqtt"
    assert runs(simulator, api, bot_name=name)["data"] == []
    containers = api.get(url(simulator, "/docker/active-containers")).json()
    assert name not in [c["name"] for c in containers]
    configs = api.get(url(simulator, f"/controllers/bots/{name}/configs"))
    assert configs.status_code == 404
    assert configs.json() == {"detail": f"Bot '{name}' not found"}

    reply = api.post(url(simulator, f"/bot-orchestration/stop-and-archive-bot/{name}")).json()
    assert reply["status"] == "success"  # the archive "started"
    assert name not in live_status(simulator, api)
    simulator.advance(34.9)
    assert name not in live_status(simulator, api)
    simulator.advance(0.1)  # the server gave up on the container it never had
    back = live_status(simulator, api)[name]
    assert back["source"] == "mqtt"
    assert back["recently_active"] is True
    assert runs(simulator, api, bot_name=name)["data"] == []  # nothing was archived


def test_an_archived_bot_that_spoke_mqtt_stays_listed_30s_after_its_container_goes(
    simulator, api
):
    simulator.configure(stopping_seconds=15, mqtt_linger_seconds=30)
    simulator.advance(0)
    name = simulator.seed_bot("pmm", controllers=["pmm_btc_1"])
    api.post(url(simulator, f"/bot-orchestration/stop-and-archive-bot/{name}"))
    simulator.advance(14.9)
    assert name not in live_status(simulator, api)
    assert runs(simulator, api, bot_name=name)["data"][0]["deployment_status"] == "DEPLOYED"

    simulator.advance(0.1)  # container removed, files archived
    assert runs(simulator, api, bot_name=name)["data"][0]["deployment_status"] == "ARCHIVED"
    containers = api.get(url(simulator, "/docker/active-containers")).json()
    assert name not in [c["name"] for c in containers]
    assert live_status(simulator, api)[name]["source"] == "mqtt"  # its last messages

    simulator.advance(29.9)
    assert name in live_status(simulator, api)
    simulator.advance(0.1)
    assert name not in live_status(simulator, api)
    assert status_of(simulator, api, name)["status"] == "not_found"


def test_a_killed_container_stays_listed_until_its_last_message_is_30s_old(simulator, api):
    simulator.configure(mqtt_linger_seconds=30)
    simulator.advance(0)
    name = simulator.seed_bot("pmm", controllers=["pmm_btc_1"])
    simulator.state.exit_bot(name)
    exited = api.get(url(simulator, "/docker/exited-containers")).json()
    assert name in [c["name"] for c in exited]
    assert live_status(simulator, api)[name]["status"] == "running"  # its last status
    simulator.advance(30)
    assert name not in live_status(simulator, api)


def test_a_script_deploy_without_script_config_runs_no_script(simulator, api):
    simulator.configure(warmup_seconds=0)
    body = {"credentials_profile": "master_account", "script": "twap"}
    bare = api.post(url(simulator, DEPLOY_SCRIPT), json={**body, "instance_name": "bare"}).json()
    configured = api.post(
        url(simulator, DEPLOY_SCRIPT),
        json={**body, "instance_name": "conf", "script_config": "twap_1.yml"},
    ).json()
    assert bare["success"] is True  # accepted: the server does not check

    def messages(name):
        return [line["msg"] for line in status_of(simulator, api, name)["general_logs"]]

    assert not any(m.startswith("Script") for m in messages(bare["unique_instance_name"]))
    assert "Script twap started" in messages(configured["unique_instance_name"])
    state = api.get(simulator.control_url + "/").json()["bots"]
    assert state[bare["unique_instance_name"]]["runs_script"] is False
    assert state[configured["unique_instance_name"]]["runs_script"] is True


def test_a_restart_loses_the_log_lines_and_bots_do_not_send_them_again(simulator, api):
    name = simulator.seed_bot("pmm", controllers=["pmm_btc_1"])
    assert status_of(simulator, api, name)["general_logs"]
    reply = http.post(simulator.control_url + "/restart", timeout=5)
    assert reply.status_code == 200
    simulator.advance(60)
    after = status_of(simulator, api, name)
    assert after["general_logs"] == []
    assert after["status"] == "running"  # its reports come back, its start-up lines do not


def test_realistic_settings_are_the_real_servers_and_survive_a_reset():
    from dashboard.simulator.state import REALISTIC_SETTINGS

    state = SimulatorState(realistic=True)
    for key, value in REALISTIC_SETTINGS.items():
        assert state.settings.to_dict()[key] == value
    state.configure(stopping_seconds=0)
    state.reset()
    assert state.settings.stopping_seconds == REALISTIC_SETTINGS["stopping_seconds"]
    assert SimulatorState().settings.appear_seconds == 0
