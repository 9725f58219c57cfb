"""In Chromium: create a destination and a rule on /alerts, send a test message to a real
receiver on loopback and see it delivered in the log; a bot page with an open alert. Screenshots
of both at 1440 and 390 px, light and dark."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import pytest

from dashboard.alerts.models import Alert, AlertDelivery, AlertDestination
from dashboard.models import db
from dashboard.registry import utcnow
from tests.alert_receivers import receiver  # noqa: F401  (a fixture)
from tests.browser import CspWatcher, log_in, screenshot
from tests.conftest import TEST_PASSWORD, make_bot_data
from tests.servers import Browser, running_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
SIGNING = "browser-test-signing-secret"
HOSTILE = "exited 137 <img src=x onerror=alert(1)> <a hx-get='/bots'>htmx</a>"


@pytest.fixture
def server(committed_app, migrated, server_env, simulator):
    # Delivery workers in the server process, polling often: the test send goes out at once.
    env = {**server_env, "ALERT_WORKERS": "1", "ALERT_POLL_SECONDS": "0.2",
           "ALERTS_ALLOW_LOOPBACK": "true", "ALERTS_ALLOW_HTTP": "true",
           "STATUS_POLL_SECONDS": "3600"}
    with running_server(migrated, **env) as running:
        admin = Browser(running.url).login("admin", TEST_PASSWORD)
        assert admin.submit("/bots/new", make_bot_data(id="sharp-bot", name="sharp-bot")
                            ).status_code == 302
        simulator.seed_bot("sharp-bot", account="client_sharp", controllers=["pmm_btc_1"])
        yield running


def _open_alert(app) -> None:
    """A firing alert on sharp-bot, its detail Hummingbot's (hostile) text."""
    with app.app_context():
        db.session.add(Alert(bot_id="sharp-bot", account_identifier="client_sharp",
                             condition="crashed", state="firing",
                             since=utcnow() - timedelta(minutes=12), fired_at=utcnow(),
                             detail=HOSTILE))
        db.session.commit()
        db.session.remove()


def _too_wide(page) -> list[str]:
    """The innermost elements past the right edge, if the page scrolls sideways."""
    return page.evaluate("""() => {
        const limit = document.documentElement.clientWidth;
        if (document.documentElement.scrollWidth <= limit) return [];
        return [...document.querySelectorAll('main *, header *')]
            .filter(el => el.getBoundingClientRect().right > limit + 1)
            .filter(el => ![...el.children].some(c => c.getBoundingClientRect().right > limit + 1))
            .slice(0, 5).map(el => el.tagName + '.' + el.className);
    }""")


def _wait_for_delivered(page, server, attempts: int = 50) -> None:
    """Reload the filtered log until the test send shows delivered (bounded, no timing
    asserted: the workers poll every 0.2 s)."""
    for _ in range(attempts):
        if page.locator("#log tbody .badge-delivery-delivered").count():
            return
        page.wait_for_timeout(200)
        page.reload()
    raise AssertionError("the test message never showed as delivered: "
                         + page.locator("#log tbody").inner_text())


def test_create_a_destination_and_a_rule_and_see_a_test_delivery(
        chromium, server, committed_app, receiver):  # noqa: F811
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    csp = CspWatcher(page)
    log_in(page, server, "admin")
    page.click("header .nav-links a.bell")
    page.wait_for_url("**/alerts")
    assert "No destinations yet" in page.content()

    page.click("text=New destination")
    page.wait_for_url("**/alerts/destinations/new")
    page.fill("input[name=name]", "Ops webhook")
    page.fill("input[name=target]", receiver.url + "/hook/secret-path-0123456789")
    page.fill("input[name=signing_secret]", SIGNING)
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    assert page.url.endswith("/alerts")
    row = page.locator("table.alerts-table tbody tr", has_text="Ops webhook")
    assert "JSON webhook" in row.inner_text() and "set, ending" in row.inner_text()
    assert "secret-path" not in page.content() and SIGNING not in page.content()

    page.click("text=New rule")
    page.wait_for_url("**/alerts/rules/new")
    page.fill("input[name=name]", "Crashes to ops")
    page.select_option("select[name=destination_id]", label="Ops webhook (JSON webhook)")
    page.check("input[name=conditions][value=drawdown]")
    page.fill("input[name=drawdown_amount]", "250")
    page.select_option("select[name=hold_seconds]", label="10 min")
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    rule = page.locator("table.alerts-table tbody tr", has_text="Crashes to ops")
    assert "Ops webhook" in rule.inner_text() and "10 min" in rule.inner_text()

    with page.expect_navigation():
        page.click("button[aria-label='Send test to Ops webhook']")
    assert "Test message queued" in page.content()
    _wait_for_delivered(page, server)
    screenshot(page, "alerts-test-delivered-1440")
    [body] = receiver.bodies("/hook/secret-path-0123456789")
    assert body["event"] == "test"
    request = receiver.received[0]
    assert request.headers["Idempotency-Key"]
    timestamp = request.headers["X-BotManagement-Timestamp"]
    expected = hmac.new(SIGNING.encode(), timestamp.encode() + b"." + request.raw,
                        hashlib.sha256).hexdigest()
    assert request.headers["X-BotManagement-Signature"] == f"sha256={expected}"
    assert csp.violations == []
    context.close()


def test_screenshots_of_alerts_and_a_bot_with_an_open_alert(chromium, server, committed_app,
                                                            receiver):  # noqa: F811
    """For README and review: /alerts with a destination, a rule, a mute and a log with a
    delivered and a dead message; a bot page with an open alert; at 1440 and 390 px, light
    and dark. The open alert's hostile detail is text: no image, no htmx request."""
    _open_alert(committed_app)
    admin = Browser(server.url).login("admin", TEST_PASSWORD)
    for data in ({"kind": "slack", "name": "Ops Slack", "enabled": "1",
                  "target": receiver.url + "/slack/T000/B000/xyz0123456789"},
                 {"kind": "telegram", "name": "Night shift Telegram", "enabled": "1",
                  "target": "123456789:AAH" + "x" * 30, "chat_id": "-1001234567"}):
        assert admin.submit("/alerts/destinations/new?kind=" + data["kind"], data,
                            "/alerts/destinations/new").status_code == 303
    with committed_app.app_context():
        # Ids only: the server's SECRET_KEY sealed the secrets, not this app's.
        ids = db.session.scalars(db.select(AlertDestination.id).order_by(AlertDestination.id)
                                 ).all()
        alert_id = db.session.query(Alert.id).scalar()
        db.session.add_all([
            AlertDelivery(alert_id=alert_id, destination_id=ids[0], event="fired",
                          status="delivered", attempts=1, delivered_at=utcnow()),
            AlertDelivery(alert_id=alert_id, destination_id=ids[1], event="fired",
                          status="dead", attempts=8, last_error="HTTP 502 from the destination"),
        ])
        db.session.commit()
        db.session.remove()
    assert admin.submit("/alerts/rules/new", {
        "name": "Everything to Slack", "destination_id": str(ids[0]), "enabled": "1",
        "conditions": ["missing", "crashed", "deploy_failed", "error_lines"],
        "hold_seconds": "300", "repeat_seconds": "3600"}).status_code == 303
    assert admin.submit("/alerts/mutes/new", {
        "account_identifier": "client_sharp", "reason": "exchange maintenance",
        "until": (utcnow() + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M")}).status_code == 303

    for name, viewport, scheme in (("1440", DESKTOP, "light"), ("1440-dark", DESKTOP, "dark"),
                                   ("390", PHONE, "light"), ("390-dark", PHONE, "dark")):
        context = chromium.new_context(viewport=viewport, color_scheme=scheme)
        page = context.new_page()
        requests_made: list[str] = []
        page.on("request", lambda r, seen=requests_made: seen.append(r.url))
        log_in(page, server, "admin")
        page.goto(server.url + "/alerts")
        screenshot(page, f"alerts-{name}")
        assert not _too_wide(page), f"/alerts scrolls sideways at {name}: {_too_wide(page)}"
        page.goto(server.url + "/bots/sharp-bot")
        box = page.locator("section.open-alerts")
        assert "Container crashed" in box.inner_text()
        assert "<img src=x" in box.inner_text()  # shown as text
        assert box.locator("img, a[hx-get]").count() == 0
        screenshot(page, f"alert-bot-{name}")
        assert not _too_wide(page), f"the bot page scrolls sideways at {name}"
        assert not [url for url in requests_made if url.endswith("/x")]
        context.close()
