"""A hostile Hummingbot (issue 10, item 1): whoever controls the Hummingbot API chooses every
name, log line, controller name, error and bot-run the pages show. Each link of the chain the
penetration test used is closed and tested here on its own; the Chromium test at the end runs
the admin's pages against such a Hummingbot and checks nothing happened.

The chain: an orphan named `zz/../../../api/bots/x` reached an `hx-get` URL unencoded, the
browser resolved it to `/api/bots/x`, htmx swapped that JSON into the page as HTML, the JSON
carried Hummingbot's log lines holding `<form hx-post=... hx-trigger=load>`, and every such
form inherited the CSRF header from `<body hx-headers>`.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask import render_template_string, url_for

from dashboard.models import Bot, BotEvent, db
from dashboard.registry import create_bot, record_event
from dashboard.simulator.hostile import hostile_names, markup, start_hostile
from tests.browser import ARTIFACTS, CspWatcher, log_in
from tests.conftest import make_bot_data
from tests.servers import running_server

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
VICTIM, OTHERS = "sharp_mm1", ["other_mm1", "other_mm2"]
TRAVERSAL = f"zz/../../../api/bots/{VICTIM}"
ADOPT_FORM = re.compile(r"^/recovery/orphans/[A-Za-z0-9_-]+$")


@pytest.fixture
def hostile(simulator):
    running = start_hostile(simulator.url, victim=VICTIM, others=OTHERS,
                            failing_configs={"evil_orphan2"})
    yield running
    running.stop()


@pytest.fixture
def hostile_app(app, reconfigure, hostile, simulator):
    """The app talking to the hostile Hummingbot, with a matched bot and two orphans."""
    reconfigure(HUMMINGBOT_API_URL=hostile.url)
    simulator.seed_bot(VICTIM, account="client_sharp", controllers=["pmm_btc_1"])
    simulator.seed_bot("evil_orphan", account="client_other", controllers=["grid_1"])
    simulator.seed_bot("evil_orphan2", account="client_other", controllers=["grid_2"])
    return app


class Tree(HTMLParser):
    """Every attribute value, and every text node with whether an ancestor has hx-disable."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
            "source", "track", "wbr"}

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []
        self.attributes: list[tuple[str, str, str]] = []  # (tag, name, value)
        self.texts: list[tuple[str, bool]] = []  # (text, inert)
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            self.attributes.append((tag, name, value or ""))
        inert = bool(self.stack and self.stack[-1][1]) or any(n == "hx-disable" for n, _ in attrs)
        if tag not in self.VOID:
            self.stack.append((tag, inert))

    def handle_endtag(self, tag):
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index][0] == tag:
                del self.stack[index:]
                break

    def handle_data(self, data):
        if data.strip():
            self.texts.append((data, bool(self.stack and self.stack[-1][1])))


# ------------------------------------------------------------------- names and URLs
def test_urls_built_from_outside_values_encode_slashes(app):
    with app.test_request_context():
        assert url_for("recovery.adopt_form", instance_name=TRAVERSAL) == \
            "/recovery/orphans/zz%2F..%2F..%2F..%2Fapi%2Fbots%2Fsharp_mm1"
        assert url_for("bots.detail", bot_id="a/../b") == "/bots/a%2F..%2Fb"
        assert url_for("api.get_bot", bot_id="x/y") == "/api/bots/x%2Fy"
        assert render_template_string("{{ 'a/../b'|segment }}") == "a%2F..%2Fb"


def test_orphans_whose_names_break_the_rule_are_text_only(hostile_app, login):
    """Shown, escaped, as text; never in a URL, a form or an attribute; nothing offered."""
    admin = login.as_admin()
    for headers in ({}, {"HX-Request": "true"}):
        page = admin.get("/recovery", headers=headers)
        assert page.status_code == 200
        tree = Tree(page.get_data(as_text=True))
        text = " ".join(data for data, _ in tree.texts)
        for name in hostile_names(VICTIM, OTHERS):
            assert name in text, name
            if name != "..":
                assert not any(name in value for _, _, value in tree.attributes), name
        assert not any("../" in value or value.endswith("/..")
                       for _, _, value in tree.attributes)
        assert not any(name == "hx-post" for _, name, _ in tree.attributes)
        assert "cannot be adopted here" in text
        # The adoptable orphans keep their forms (inline or loaded on demand).
        assert "evil_orphan" in " ".join(v for _, n, v in tree.attributes if n == "id")


def test_an_adopt_form_for_a_rule_breaking_name_is_a_404(hostile_app, login):
    admin = login.as_admin()
    assert admin.get("/recovery/orphans/zz%2F..%2Fx").status_code == 404
    assert admin.get("/recovery/orphans/..%20x", headers={"HX-Request": "true"}) \
        .status_code == 404


# ------------------------------------------------------------- inert outside text
def _payload_texts(tree: Tree) -> list[tuple[str, bool]]:
    return [(text, inert) for text, inert in tree.texts if "hx-" in text or "<" in text]


@pytest.mark.parametrize("path", ["/recovery", "/bots/sharp_mm1"])
@pytest.mark.parametrize("htmx", [False, True])
def test_every_piece_of_hummingbot_text_sits_in_an_hx_disable_container(
        hostile_app, login, path, htmx):
    """Escaped already; hx-disable makes even markup there inert to htmx (defence in depth)."""
    bot = create_bot(make_bot_data(id=VICTIM, name=VICTIM), "admin")
    bot.status, bot.instance_name, bot.last_error = "running", VICTIM, markup(VICTIM, OTHERS)[1]
    record_event(bot, "deploy_failed", "admin", from_status="deploying",
                 to_status="deploy_failed", details={"error": markup(VICTIM, OTHERS)[2]})
    db.session.commit()
    headers = {"HX-Request": "true"} if htmx else {}
    page = login.as_admin().get(path, headers=headers)
    assert page.status_code == 200
    found = _payload_texts(Tree(page.get_data(as_text=True)))
    assert found, "the hostile text should be on the page"
    assert [text for text, inert in found if not inert] == []


def _hostile_version_and_alert(bot: Bot) -> None:
    """Hummingbot's markup in the bot's configuration (as adopting a hostile controller config
    would store it), edited once so the versions pages have a version and a diff to show, and
    in an open alert's detail."""
    from dashboard.alerts.models import Alert
    from dashboard.registry import update_bot, utcnow

    lines = markup(VICTIM, OTHERS)
    db.session.commit()
    update_bot(bot, {**make_bot_data(id=bot.id, name=bot.name),
                     "config": json.dumps({"note": lines[0], "levels": [lines[4]]})},
               "admin", expected_version=bot.version)
    db.session.add(Alert(bot_id=bot.id, account_identifier=bot.account_identifier,
                         condition="error_lines", state="firing", since=utcnow(),
                         detail=lines[5]))
    db.session.commit()


def _seed_hostile_text_everywhere() -> None:
    """The victim bot with Hummingbot's markup in its error, its history, its configuration
    and versions, and an open alert."""
    lines = markup(VICTIM, OTHERS)
    bot = create_bot(make_bot_data(id=VICTIM, name=VICTIM), "admin")
    bot.status, bot.instance_name, bot.last_error = "running", VICTIM, lines[1]
    record_event(bot, "deploy_failed", "admin", from_status="deploying",
                 to_status="deploy_failed", details={"error": lines[2]})
    _hostile_version_and_alert(bot)


@pytest.mark.parametrize("path", ["/bots", "/accounts/client_sharp", "/alerts",
                                  f"/bots/{VICTIM}/versions", f"/bots/{VICTIM}/versions/1",
                                  f"/bots/{VICTIM}/versions/2"])
def test_the_newer_pages_keep_hummingbot_text_in_hx_disable_containers(
        hostile_app, login, path):
    """The list, the account page, the alerts page and the versions pages, as admin and as
    the bot's client: every text node that carries markup sits under hx-disable."""
    _seed_hostile_text_everywhere()
    for client in (login.as_admin(), login.as_client_a()):
        page = client.get(path)
        assert page.status_code == 200, path
        found = _payload_texts(Tree(page.get_data(as_text=True)))
        assert found or path == "/alerts", path  # its open alerts are on the bot's pages
        assert [text for text, inert in found if not inert] == [], path


def test_no_template_hands_the_csrf_header_to_htmx():
    """No htmx request of ours changes state (every POST is a plain form with its own
    csrf_token field), so no element carries the token in hx-headers or hx-vals."""
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        assert "hx-headers" not in text and "hx-vals" not in text, template
        assert not re.search(r"hx-(post|put|patch|delete)=", text), template


def test_htmx_never_asks_another_origin(client):
    page = client.get("/login").get_data(as_text=True)
    meta = re.search(r'<meta name="htmx-config" content=\'([^\']+)\'', page).group(1)
    assert '"selfRequestsOnly": true' in meta


def test_the_hostile_hummingbot_really_is_hostile(hostile_app, hostile):
    """The stand-in's own check: it does report what the tests above defend against."""
    client = hostile_app.extensions["hummingbot"].require_client()
    live = client.status()
    assert TRAVERSAL in live and ".." in live
    assert any("hx-post" in line.msg for line in live[VICTIM].general_logs)
    assert any("hx-post" in name for name in live[VICTIM].controllers)
    [run] = client.bot_runs(bot_name="evil_orphan")
    assert "hx-post" in (run.strategy_name or "")
    assert not hostile.app.posts()


# ------------------------------------------------------------------------------- Chromium
def _definitions(app) -> tuple[list[tuple], int]:
    """Every stored fact of every bot (not the last status seen, which reads refresh), and
    the number of history events."""
    with app.app_context():
        rows = db.session.execute(sa.select(
            Bot.id, Bot.name, Bot.account_identifier, Bot.strategy, Bot.connector, Bot.pair,
            Bot.config, Bot.status, Bot.instance_name, Bot.version, Bot.archived_at,
            Bot.deploy_settings, Bot.last_error, Bot.deploy_request_id).order_by(Bot.id)).all()
        events = db.session.scalar(sa.select(sa.func.count()).select_from(BotEvent))
        db.session.remove()
    return [tuple(row) for row in rows], events


def _seed_victims(app, simulator) -> None:
    settings = {"mode": "script", "image": "hummingbot/hummingbot:latest",
                "script": "simple_pmm.py", "controllers": []}
    with app.app_context():
        victim = create_bot(make_bot_data(id=VICTIM, name=VICTIM), "admin")
        victim.status, victim.instance_name = "running", VICTIM
        victim.last_error = markup(VICTIM, OTHERS)[1]
        record_event(victim, "deploy_failed", "admin", from_status="deploying",
                     to_status="deploy_failed", details={"error": markup(VICTIM, OTHERS)[2]})
        _hostile_version_and_alert(victim)
        for other in OTHERS:
            bot = create_bot(make_bot_data(id=other, name=other,
                                           account_identifier="client_other"), "admin")
            bot.deploy_settings = settings
        db.session.commit()
        db.session.remove()
    simulator.seed_bot(VICTIM, account="client_sharp", controllers=["pmm_btc_1"])
    # Ten orphans sorting first fill the page's inline adopt forms: the others, hostile names
    # included, load on demand (hx-get on reveal), the way the penetration test found them.
    for n in range(10):
        simulator.seed_bot(f"a_orphan_{n}", account="client_sharp", controllers=[f"c_{n}"])
    simulator.seed_bot("evil_orphan", account="client_other", controllers=["grid_1"])
    simulator.seed_bot("evil_orphan2", account="client_other", controllers=["grid_2"])


def _screenshots(page, name: str) -> None:
    """1440 and 390 px wide; long pages on a busy machine get a longer budget."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for width, height in ((1440, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True,
                        timeout=120_000)
    page.set_viewport_size({"width": 1440, "height": 900})


def _wait_for_polls(page, path: str, count: int = 2) -> None:
    """Two refreshes of the page's own polled region."""
    def own_poll(response) -> bool:
        return response.request.headers.get("hx-request") == "true" \
            and urlsplit(response.url).path == path

    for _ in range(count):
        with page.expect_response(own_poll, timeout=15_000) as polled:
            pass
        assert polled.value.status == 200


@pytest.mark.browser
@pytest.mark.slow
def test_admin_pages_against_a_hostile_hummingbot_send_nothing_and_change_nothing(
        chromium, committed_app, migrated, server_env, simulator, hostile):
    """The recovery desk, the list, a bot's page and versions, the account page, alerts,
    servers and the login's own pages, as an admin, while Hummingbot reports traversal names
    and htmx payloads everywhere: the browser asks for nothing beyond each page, its polls,
    its adopt forms and static files; no bot changes; Hummingbot receives no write."""
    _seed_victims(committed_app, simulator)
    before = _definitions(committed_app)
    env = {**server_env, "HUMMINGBOT_API_URL": hostile.url, "STATUS_POLL_SECONDS": "1"}
    with running_server(migrated, **env) as server:
        context = chromium.new_context(viewport={"width": 1440, "height": 900})
        page = context.new_page()
        csp = CspWatcher(page)
        log_in(page, server, "admin")
        asked: list[tuple[str, str]] = []
        page.on("request", lambda r: asked.append((r.method, r.url)))
        pages = {"/recovery": True, "/bots": True, f"/bots/{VICTIM}": True,
                 "/accounts/client_sharp": False, f"/bots/{VICTIM}/versions": False,
                 f"/bots/{VICTIM}/versions/1": False, "/alerts": False, "/servers": False,
                 "/account/password": False, "/account/mfa": False}
        for path, polls in pages.items():
            page.goto(server.url + path)
            page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
            if polls:
                _wait_for_polls(page, path)
                page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
                _wait_for_polls(page, path)
            assert page.evaluate("""() => document.querySelectorAll(
                '[hx-post], [hx-put], [hx-patch], [hx-delete]').length""") == 0, path
            assert page.title() != "pwned", path
            if path == "/recovery" or path.startswith("/bots/"):
                _screenshots(page, "hostile-" + path.strip("/").replace("/", "-"))
        recovery = page.goto(server.url + "/recovery").text()
        context.close()

    def expected(url: str) -> bool:
        path = url[len(server.url):].split("?")[0] if url.startswith(server.url) else None
        return path is not None and (path in pages or path.startswith("/static/")
                                     or ADOPT_FORM.match(path) is not None)

    assert [(method, url) for method, url in asked if method != "GET" or not expected(url)] \
        == []
    assert not any("/api/" in url for _, url in asked)
    assert hostile.app.posts() == []
    assert _definitions(committed_app) == before
    assert csp.violations == []
    assert "cannot be adopted here" in recovery


@pytest.mark.browser
@pytest.mark.slow
def test_htmx_drops_an_answer_that_is_not_html(chromium, committed_app, migrated, server_env):
    """Even an element htmx does process (here: added by hand) never gets JSON swapped in."""
    with running_server(migrated, **server_env) as server:
        context = chromium.new_context()
        page = context.new_page()
        log_in(page, server, "admin")
        result = page.evaluate("""() => new Promise((resolve) => {
            setTimeout(() => resolve("no answer within 10 s"), 10000);
            const probe = document.createElement("div");
            probe.setAttribute("hx-get", "/healthz");
            probe.setAttribute("hx-trigger", "load");
            probe.textContent = "untouched";
            probe.addEventListener("htmx:afterRequest",
                () => setTimeout(() => resolve(probe.textContent), 100));
            document.body.appendChild(probe);
            htmx.process(probe);
        })""")
        context.close()
    assert result == "untouched"


def test_text_a_client_types_into_alerts_is_inert_on_the_admins_page(app, login, accounts,
                                                                     make_bot):
    """Destination and rule names and mute reasons are another tenant's text on the admin's
    /alerts: escaped, and under hx-disable like Hummingbot's."""
    from dashboard.alerts import service

    make_bot(id=VICTIM, name=VICTIM)
    payload = markup(VICTIM, OTHERS)[1][:80]  # '<form hx-post="/bots/sharp_mm1/deploy" ...'
    destination = service.save_destination(
        {"name": payload, "kind": "slack", "target": "http://127.0.0.1:9/hook"},
        accounts.client_a)
    service.save_rule({"name": payload, "conditions": ["crashed"],
                       "destination_id": destination.id}, accounts.client_a)
    service.create_mute({"bot_id": VICTIM, "minutes": "60", "reason": payload}, accounts.client_a)
    page = login.as_admin().get("/alerts")
    assert page.status_code == 200
    found = _payload_texts(Tree(page.get_data(as_text=True)))
    assert len(found) >= 3
    assert [text for text, inert in found if not inert] == []
