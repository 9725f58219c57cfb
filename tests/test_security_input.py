"""Input: allowlists, size limits, unstorable characters, escaping (ASVS 1.2.1, 1.2.4, 2.2.1,
2.2.2, 4.1.1, 5.2.1, 16.5.3). Each fix here came with the test that showed its 500 first."""

from __future__ import annotations

import json

import pytest

from dashboard.models import Bot, db
from tests.conftest import make_bot_data

XSS = "<img src=x onerror=alert(1)>"
SCRIPT = "</script><script>alert(document.cookie)</script>"


# ------------------------------------------------------------------ allowlists
@pytest.mark.parametrize("field", ["id", "name", "account_identifier", "strategy", "connector",
                                   "pair"])
@pytest.mark.parametrize("value", [XSS, "a b", "x'; DROP TABLE bots; --", "../../etc/passwd",
                                   "naïve", "a" * 200])
def test_names_and_ids_pass_allowlists(login, field, value):
    response = login.as_admin().post("/bots/new", data=make_bot_data(**{field: value}))
    assert response.status_code == 422
    assert db.session.query(Bot).count() == 0
    assert XSS not in response.get_data(as_text=True)  # echoed back escaped, if at all


@pytest.mark.parametrize("query", [
    "status=running' OR '1'='1", "sort=name; DROP TABLE bots", "sort=__class__",
    "q=%25' OR 1=1 --", "q=_", "q=%25", "account=' OR ''='", "archived=1 OR 1=1",
])
def test_filters_and_sorting_never_reach_sql_as_text(login, make_bot, query):
    make_bot(id="visible", name="visible")
    page = login.as_admin().get(f"/bots?{query}")
    assert page.status_code == 200
    api = login.as_admin().get(f"/api/bots?{query}")
    assert api.status_code == 200
    ids = [b["id"] for b in api.get_json()["bots"]]
    assert ids in ([], ["visible"])  # a filter matched literally or fell back to "any"
    assert db.session.get(Bot, "visible") is not None


def test_like_wildcards_are_literal(login, make_bot):
    make_bot(id="abc", name="abc")
    assert login.as_admin().get("/api/bots?q=%25").get_json()["bots"] == []
    assert login.as_admin().get("/api/bots?q=_").get_json()["bots"] == []


# ------------------------------------------------------------------ size and characters
def test_body_over_max_content_length_is_a_clean_413(app, login, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 2048)
    admin = login.as_admin()
    big = make_bot_data(config=json.dumps({"pad": "x" * 4096}))
    page = admin.post("/bots/new", data=big)
    assert page.status_code == 413
    body = page.get_data(as_text=True)
    assert page.headers["X-Request-ID"] in body and "Traceback" not in body
    assert page.headers["Content-Security-Policy"]
    assert db.session.query(Bot).count() == 0
    api = admin.open("/api/bots", method="GET", data="x" * 4096,
                     headers={"Content-Type": "application/octet-stream"})
    assert api.status_code == 413
    assert api.get_json()["request_id"] == api.headers["X-Request-ID"]


@pytest.mark.parametrize("url", ["/bots?q=%00", "/bots?account=a%00b", "/bots/a%00b",
                                 "/api/bots?q=%00", "/api/bots/x%00", "/bots?page=%00"])
def test_nul_characters_are_refused_not_crashed_on(login, url):
    """PostgreSQL cannot hold a NUL: these were 500s."""
    response = login.as_admin().get(url)
    assert response.status_code == 400, url


def test_nul_in_a_login_is_a_400(client, accounts):
    assert client.post("/login", data={"username": "ad\x00min", "password": "x" * 10}) \
        .status_code == 400


@pytest.mark.parametrize("config", [
    '{"a": "\\u0000"}', '{"\\u0000": 1}', '{"a": ["ok", {"b": "\\u0000"}]}',
    "[" * 50_000 + "]" * 50_000, '{"a":' * 40 + "1" + "}" * 40,
])
def test_unstorable_configurations_are_field_errors(login, config):
    """A NUL inside JSON, or nesting deep enough for a RecursionError, were 500s."""
    response = login.as_admin().post("/bots/new", data=make_bot_data(config=config))
    assert response.status_code == 422
    assert "Configuration" in response.get_data(as_text=True)


@pytest.mark.parametrize("page", ["²", "٣", "-1", "1e3", "99999999999999999999"])
def test_odd_page_numbers_fall_back_to_the_first_page(login, page):
    """"²".isdigit() is True and int("²") raises: that was a 500."""
    assert login.as_admin().get("/bots", query_string={"page": page}).status_code == 200


@pytest.mark.parametrize("extra", [{"endpoint": "x"}, {"_scheme": "javascript", "_external": "1"},
                                   {"_anchor": "x"}, {"_method": "POST"}])
def test_pager_links_repeat_only_the_filters(app, login, make_bot, monkeypatch, extra):
    """The pager fed every query key to url_for: `endpoint` was a 500, `_scheme` a
    javascript: link."""
    monkeypatch.setitem(app.config, "PAGE_SIZE", 1)
    make_bot(id="p1", name="p1")
    make_bot(id="p2", name="p2")
    response = login.as_admin().get("/bots", query_string={"status": "stopped", **extra})
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert 'href="/bots?status=stopped&amp;page=2"' in body
    assert "javascript:" not in body


# ------------------------------------------------------------------ escaping
def test_xss_in_configuration_keys_and_values_renders_escaped(login, make_bot):
    make_bot(config=json.dumps({XSS: SCRIPT, "nested": [XSS]}))
    for url in ("/bots/pmm-btc", "/bots/pmm-btc/edit"):
        body = login.as_admin().get(url).get_data(as_text=True)
        assert XSS not in body and SCRIPT not in body, url
    api = login.as_admin().get("/api/bots/pmm-btc")
    assert api.get_json()["config"][XSS] == SCRIPT  # data is kept as given
    assert api.mimetype == "application/json" and "sandbox" in api.headers[
        "Content-Security-Policy"]


def test_xss_in_hummingbot_logs_and_names_renders_escaped(login, make_bot, simulator):
    """What Hummingbot reports (log lines, controller names, errors) is untrusted too."""
    name = simulator.seed_bot("pmm-btc", controllers=["pmm_1"])
    simulator.state.add_log(name, "ERROR", XSS)
    simulator.state.add_log(name, "INFO", SCRIPT)
    bot = make_bot()
    bot.instance_name = name
    db.session.commit()
    client = login.as_client_a()
    for headers in ({}, {"HX-Request": "true"}):
        body = client.get("/bots/pmm-btc", headers=headers).get_data(as_text=True)
        assert "onerror=alert(1)" not in body.replace("onerror=alert(1)&gt;", "")
        assert XSS not in body and SCRIPT not in body
        assert "&lt;img src=x onerror=alert(1)&gt;" in body


def test_search_and_next_parameters_are_escaped_where_echoed(client, login):
    body = login.as_admin().get("/bots", query_string={"q": f'"{XSS}'}).get_data(as_text=True)
    assert XSS not in body
    login_page = client.get("/login", query_string={"next": '"><script>x</script>'})
    assert "<script>x</script>" not in login_page.get_data(as_text=True)


@pytest.mark.parametrize("query", ["page=²", "per_page=²", "page=%C2%B3&per_page=%D9%A3"])
def test_odd_api_page_numbers_fall_back_to_defaults(login, query):
    """Same trap as the pages' `page`: "²".isdigit() and int("²") raises."""
    response = login.as_admin().get(f"/api/bots?{query}")
    assert response.status_code == 200
    assert response.get_json()["page"] == 1
