"""Every screen, in Chromium: no sideways scroll at phone width, WCAG 2.2 AA by axe-core in
both themes, a keyboard walk of the list and of a form, and a theme toggle that persists.

axe-core comes from the npm registry, pinned (`make test` installs it into node_modules/);
without it these tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.browser import log_in, screenshot
from tests.conftest import TEST_PASSWORD, make_bot_data
from tests.servers import Browser, running_server
from tests.test_browser_recovery import drifted_definitions
from tests.test_transfer import OLD_METADATA

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
AXE_VERSION = "4.14.1"  # the Makefile's AXE_VERSION
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
MFA_USER = "a11y-mfa"


def axe_source() -> str:
    path = ROOT / "node_modules" / "axe-core" / "axe.min.js"
    if not path.exists():
        reason = "axe-core not installed (make test installs it: npm install axe-core@" \
            f"{AXE_VERSION})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}: accessibility tests may not skip in CI")
        pytest.skip(reason)
    version = json.loads((path.parent / "package.json").read_text())["version"]
    assert version == AXE_VERSION, f"axe-core {version} installed, {AXE_VERSION} pinned"
    return path.read_text()


@pytest.fixture
def server(committed_app, migrated, server_env, simulator):
    # Polling off in effect (an hour): a swap in the middle of an axe run would race it.
    with running_server(migrated, **{**server_env, "STATUS_POLL_SECONDS": "3600"}) as running:
        yield running


@pytest.fixture
def fleet(server, committed_app, simulator):
    """A list with a running bot, a stopped one and every kind of recovery row."""
    admin = Browser(server.url).login("admin", TEST_PASSWORD)
    for bot in (make_bot_data(id="sharp-bot", name="sharp-bot"),
                make_bot_data(id="sharp-idle", name="sharp-idle", pair="ETH-USDT",
                              strategy="v2_with_controllers")):
        assert admin.submit("/bots/new", bot).status_code == 302
    simulator.seed_bot("sharp-bot", account="client_sharp", controllers=["pmm_btc_1"])
    simulator.state.add_log("sharp-bot", "ERROR", "insufficient balance <b>not markup</b>")
    orphan = simulator.seed_bot("orphan-grid", account="client_sharp",
                                controllers=["grid_eth_1"], timestamped=True)
    drifted_definitions(committed_app, simulator)
    _relink_pair(committed_app, simulator)
    _mfa_user(committed_app)
    _alerts(admin, committed_app)
    return orphan


def _alerts(admin, app) -> None:
    """A destination, a rule and a mute made through the server (it seals the secret with its
    own key); a firing alert on sharp-bot and a dead delivery written directly."""
    from datetime import timedelta

    from dashboard.alerts.models import Alert, AlertDelivery, AlertDestination
    from dashboard.models import db
    from dashboard.registry import utcnow

    assert admin.submit("/alerts/destinations/new", {
        "kind": "slack", "name": "Ops Slack", "enabled": "1",
        "target": "http://127.0.0.1:9/services/T0/B0/a11y0123456789"}).status_code == 303
    with app.app_context():
        destination_id = db.session.scalar(db.select(AlertDestination.id))
    assert admin.submit("/alerts/rules/new", {
        "name": "Crashes to Slack", "destination_id": str(destination_id), "enabled": "1",
        "conditions": ["crashed", "missing"], "hold_seconds": "300"}).status_code == 303
    assert admin.submit("/alerts/mutes/new", {
        "account_identifier": "client_sharp", "reason": "maintenance",
        "until": (utcnow() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")}).status_code == 303
    with app.app_context():
        alert = Alert(bot_id="sharp-bot", account_identifier="client_sharp",
                      condition="crashed", state="firing", since=utcnow(), fired_at=utcnow(),
                      detail="exited 137 <b>not markup</b>")
        db.session.add(alert)
        db.session.flush()
        db.session.add(AlertDelivery(alert_id=alert.id, destination_id=destination_id,
                                     event="fired", status="dead", attempts=8,
                                     last_error="HTTP 502 from the destination"))
        db.session.commit()
        db.session.remove()


def _relink_pair(app, simulator) -> None:
    """A missing definition whose lost deploy's orphan runs (the same request tag): the
    recovery desk offers Re-link on both of its sections."""
    from dashboard.models import db
    from dashboard.registry import create_bot

    with app.app_context():
        bot = create_bot(make_bot_data(id="sharp-pmm", name="sharp-pmm",
                                       strategy="v2_with_controllers"), "admin")
        bot.status, bot.instance_name = "running", "sharp-pmm-0a1b2c-20250101-000000"
        bot.deploy_request_id = "7d3b1e" + "0" * 26
        db.session.commit()
        db.session.remove()
    simulator.seed_bot("sharp-pmm-7d3b1e", account="client_sharp", controllers=["pmm_btc_1"],
                       timestamped=True)


def _mfa_user(app) -> None:
    """A login with TOTP on, for the second step of a login (/login/verify)."""
    from dashboard import mfa
    from dashboard.models import db
    from dashboard.users import create_user, find_user

    with app.app_context():
        user = find_user(MFA_USER) or create_user(MFA_USER, TEST_PASSWORD, "admin")
        if not user.totp_secret:
            mfa.enable(user, mfa.new_secret(), 0)
        db.session.commit()
        db.session.remove()


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)

    def add(self, where: str, text: str) -> None:
        self.problems.append(f"{where}: {text}")


def _check_page(page, label: str, findings: Findings, source: str) -> None:
    """Sideways scroll, then axe in light and in dark, on the page as loaded."""
    width = page.evaluate("() => [document.documentElement.scrollWidth,"
                          " document.documentElement.clientWidth, window.innerWidth]")
    if width[0] != width[1]:
        wide = page.evaluate("""limit => [...document.querySelectorAll('main *, header *')]
            .filter(el => el.getBoundingClientRect().right > limit + 1)
            .filter(el => ![...el.children].some(c => c.getBoundingClientRect().right > limit + 1))
            .slice(0, 3).map(el => el.tagName + '.' + el.className)""", width[1])
        findings.add(label, f"scrolls sideways: scrollWidth {width[0]} > viewport {width[1]}"
                            f" ({', '.join(wide)})")
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=source)
    for theme in ("light", "dark"):
        page.evaluate("theme => document.documentElement.setAttribute('data-theme', theme)",
                      theme)
        result = page.evaluate(
            "tags => axe.run(document, {runOnly: {type: 'tag', values: tags},"
            " resultTypes: ['violations']})", AXE_TAGS)
        for violation in result["violations"]:
            targets = [" ".join(map(str, node["target"])) for node in violation["nodes"][:3]]
            findings.add(f"{label} [{theme}]",
                         f"{violation['id']} ({violation['impact']}): {targets}")
    page.evaluate("() => document.documentElement.removeAttribute('data-theme')")


def _pages(role: str, orphan: str) -> list[tuple[str, str]]:
    """(label, path) of every page a role can open; forms submitted wrong come after."""
    common = [("list", "/bots"), ("detail", "/bots/sharp-bot"),
              ("password", "/account/password"), ("two-factor", "/account/mfa"),
              ("not-found", "/bots/no-such-bot"),
              ("account", "/accounts/client_sharp"),
              ("account-statement", "/accounts/client_sharp/statement"),
              ("bot-statement", "/bots/sharp-bot/statement"),
              ("versions", "/bots/sharp-bot/versions"), ("version", "/bots/sharp-bot/versions/1"),
              # The destination form once per layout (webhook's and email's fields).
              ("alerts", "/alerts"), ("alerts-new-webhook", "/alerts/destinations/new"),
              ("alerts-new-email", "/alerts/destinations/new?kind=email"),
              ("alerts-new-rule", "/alerts/rules/new"), ("alerts-new-mute", "/alerts/mutes/new")]
    if role == "client":
        return common
    return [
        *common,
        ("list-filtered", "/bots?status=running&q=sharp"),
        ("new", "/bots/new"), ("edit", "/bots/sharp-bot/edit"),
        ("deploy", "/bots/sharp-bot/deploy"),
        ("confirm-start", "/bots/sharp-bot/start"), ("confirm-stop", "/bots/sharp-bot/stop"),
        ("confirm-stop-archive", "/bots/sharp-bot/stop-archive"),
        ("detail-archived", "/bots/sharp-old"),
        ("recovery", "/recovery"), ("adopt", f"/recovery/orphans/{orphan}"),
        ("redeploy", "/recovery/bots/master-lost/redeploy"),
        ("recreate", "/recovery/recreate"), ("import", "/recovery/import"),
        ("new-hummingbot-account", "/hummingbot/accounts/new"),
        ("batches", "/batches"),
        ("servers", "/servers"), ("server-edit", "/servers/default/edit"),
        ("batch-preview", "/batches/new?action=stop&ids=sharp-bot&ids=sharp-idle"),
        ("kill-switch-preview", "/batches/new?action=stop&all=1&kill=1&account=client_sharp"),
        ("batch-invalid", "/batches/new?action=stop"),  # no bot chosen: a 400 that says so
    ]


# Forms submitted with errors: the page comes back with its error summary and field errors.
FAILED_SUBMITS = [
    ("new-errors", "/bots/new", {"input[name=id]": "bad id!", "input[name=pair]": "BTCUSDT"}),
    ("recreate-errors", "/recovery/recreate", {"input[name=id]": "bad id!"}),
    ("alerts-destination-errors", "/alerts/destinations/new", {
        "input[name=name]": "x", "input[name=target]": "ftp://example.com/hook",
        "input[name=signing_secret]": "short"}),
    ("password-errors", "/account/password", {"input[name=current_password]": "wrong",
                                              "input[name=new_password]": "short",
                                              "input[name=confirm_password]": "short"}),
]


def _walk(chromium, server, orphan, role: str, viewport: dict, source: str) -> Findings:
    findings = Findings()
    # bypass_csp: to inject axe. Reduced motion: no colour transition mid-measurement.
    context = chromium.new_context(viewport=viewport, bypass_csp=True, reduced_motion="reduce")
    page = context.new_page()
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    size = f"{viewport['width']}px"

    page.goto(server.url + "/login")
    _check_page(page, f"{role} {size} login", findings, source)
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "not the password")
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    _check_page(page, f"{role} {size} login-failed", findings, source)
    log_in(page, server, "admin" if role == "admin" else "sharp")

    for label, path in _pages(role, orphan):
        page.goto(server.url + path)
        _check_page(page, f"{role} {size} {label}", findings, source)
        if role == "admin" and viewport is PHONE and label in {"list", "detail", "recovery"}:
            screenshot(page, f"a11y-{label}-phone")
    if role == "admin":
        for label, path, fills in FAILED_SUBMITS:
            page.goto(server.url + path)
            for selector, value in fills.items():
                page.fill(selector, value)
            page.click("main form button[type=submit]")
            page.wait_for_load_state()
            _check_page(page, f"{role} {size} {label}", findings, source)
        page.goto(server.url + "/recovery/import")  # the preview of an uploaded file
        page.set_input_files("input[type=file]", files=[{
            "name": "bots.json", "mimeType": "application/json",
            "buffer": json.dumps(OLD_METADATA).encode()}])
        with page.expect_navigation():
            page.click("main form button[type=submit]")
        assert page.locator("#import-preview").is_visible()
        _check_page(page, f"{role} {size} import-preview", findings, source)
        _reached_pages(page, server, f"{role} {size}", findings, source)
    context.close()

    # The second step of a login with two-factor on, as an anonymous visitor would see it.
    context = chromium.new_context(viewport=viewport, bypass_csp=True, reduced_motion="reduce")
    page = context.new_page()
    page.goto(server.url + "/login")
    page.fill("input[name=username]", MFA_USER)
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/login/verify")
    _check_page(page, f"{role} {size} verify", findings, source)
    context.close()

    expected = {server.url + "/bots/no-such-bot"}
    for url in set(missing) - expected:
        findings.add(f"{role} {size}", f"404 for {url}")
    return findings


def _reached_pages(page, server, where: str, findings: Findings, source: str) -> None:
    """Admin pages with no fixed address: what a link or a submit leads to."""
    from tests.test_import_report import BAD

    page.goto(server.url + "/recovery/import")  # a file with bad entries: every one reported
    page.set_input_files("input[type=file]", files=[{
        "name": "bad.json", "mimeType": "application/json", "buffer": json.dumps(BAD).encode()}])
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    assert page.locator("#import-problems li").count() >= 4
    _check_page(page, f"{where} import-errors", findings, source)

    page.goto(server.url + "/alerts")  # an existing destination's and rule's edit forms
    edits = {kind: page.locator(f"main a[href*='/alerts/{kind}/'][href$='/edit']")
             .first.get_attribute("href") for kind in ("destinations", "rules")}
    for kind, href in edits.items():
        page.goto(server.url + href)
        _check_page(page, f"{where} alerts-edit-{kind}", findings, source)

    # An edit conflict: someone saves the bot while this form is open; the merge page.
    page.goto(server.url + "/bots/sharp-idle/edit")
    other = Browser(server.url).login("admin", TEST_PASSWORD)
    assert other.submit("/bots/sharp-idle/edit", make_bot_data(
        id="sharp-idle", name="sharp-idle", pair="ETH-USDT", strategy="v2_with_controllers",
        config='{"order_amount": 0.5}', version=page.input_value("input[name=version]"),
    )).status_code == 302
    page.fill("textarea[name=config]", '{"order_amount": 0.25}')
    page.click("main form button[type=submit]")
    page.wait_for_selector("#conflict")
    _check_page(page, f"{where} edit-conflict", findings, source)

    # A batch's page, once it has finished (no poll swapping mid-check). Last: it archives.
    page.goto(server.url + "/batches/new?action=archive&ids=sharp-idle")
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    page.wait_for_selector("text=Finished", timeout=60_000)
    page.reload()
    _check_page(page, f"{where} batch", findings, source)


# Each walk checks every page in both themes (axe twice per page): ~40 pages for an admin,
# which took 295 s on a loaded 2-core machine, close to the suite's 300 s default.
@pytest.mark.timeout(900)
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1440x900", "390x844"])
@pytest.mark.parametrize("role", ["admin", "client"])
def test_every_page_fits_the_screen_and_passes_axe_in_both_themes(chromium, server, fleet,
                                                                  role, viewport):
    findings = _walk(chromium, server, fleet, role, viewport, axe_source())
    report = ROOT / "test-artifacts" / f"a11y-{role}-{viewport['width']}.txt"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("\n".join(findings.problems) or "no problems\n")
    assert findings.problems == []


def test_axe_and_the_width_check_do_catch_problems(chromium, server, fleet):
    """Control: a page made wrong on purpose is reported, so a silent check cannot pass."""
    source = axe_source()
    context = chromium.new_context(viewport=PHONE, bypass_csp=True, reduced_motion="reduce")
    page = context.new_page()
    log_in(page, server, "admin")
    page.evaluate("""() => {
        const img = document.createElement('img'); img.src = '/static/favicon.svg';
        const wide = document.createElement('div'); wide.style.width = '900px';
        wide.textContent = 'wide';
        document.querySelector('main').append(img, wide);
    }""")
    findings = Findings()
    _check_page(page, "broken", findings, source)
    text = "\n".join(findings.problems)
    assert "scrolls sideways" in text
    assert "image-alt" in text and "[light]" in text and "[dark]" in text
    context.close()


def _focus_ring(page) -> dict:
    return page.evaluate("""() => {
        const el = document.activeElement, style = getComputedStyle(el);
        return {tag: el.tagName, text: (el.innerText || el.value || '').trim().slice(0, 40),
                cls: el.className, outline: style.outlineStyle, width: style.outlineWidth};
    }""")


def test_keyboard_walk_of_the_list(chromium, server, fleet):
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    log_in(page, server, "admin")

    # The first Tab reaches the skip link, which is visible when focused and skips the nav.
    page.keyboard.press("Tab")
    first = _focus_ring(page)
    assert first["text"] == "Skip to content" and first["outline"] == "solid"
    assert page.locator(".skip-link").bounding_box()["y"] >= 0
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"

    # Tab on through the filters and rows: every stop shows a ring, and the row menu opens.
    seen = []
    for _ in range(40):
        page.keyboard.press("Tab")
        focused = _focus_ring(page)
        seen.append(focused)
        assert focused["outline"] == "solid" and focused["width"] != "0px", focused
        if page.evaluate("() => document.activeElement.id") == "menu-sharp-bot":
            break
    else:
        raise AssertionError(f"never reached the row menu: {seen}")
    assert any(f["tag"] == "INPUT" for f in seen) and any(f["tag"] == "SELECT" for f in seen)
    page.keyboard.press("Enter")
    menu = page.locator("#bot-sharp-bot details.row-menu")
    assert menu.get_attribute("open") is not None
    page.keyboard.press("Tab")  # into the menu
    assert page.evaluate("() => document.activeElement.textContent.trim()") == "Deploy…"
    page.keyboard.press("Escape")
    assert menu.get_attribute("open") is None
    assert page.evaluate("() => document.activeElement.id") == "menu-sharp-bot"
    screenshot(page, "keyboard-list-focus")
    context.close()


def test_keyboard_walk_of_a_form_lands_on_the_error_summary(chromium, server, fleet):
    context = chromium.new_context(viewport=PHONE)
    page = context.new_page()
    log_in(page, server, "admin")
    page.goto(server.url + "/bots/new")
    page.focus("input[name=id]")
    page.keyboard.type("kb-bot")
    for name, value in (("name", "kb-bot"), ("account_identifier", "client_sharp"),
                        ("strategy", "pure_market_making"), ("connector", "binance"),
                        ("pair", "BTCUSDT")):  # not BASE-QUOTE: refused
        page.keyboard.press("Tab")
        assert page.evaluate("() => document.activeElement.name") == name
        page.keyboard.type(value)
    with page.expect_navigation():
        page.keyboard.press("Enter")  # submits the form
    active = page.evaluate("() => document.activeElement.className")
    assert "flash-error" in active
    assert page.locator("input[name=pair]").get_attribute("aria-invalid") == "true"
    assert page.locator("input[name=pair]").input_value() == "BTCUSDT"  # the input kept
    screenshot(page, "keyboard-form-errors-phone")

    page.fill("input[name=pair]", "BTC-USDT")
    page.focus("input[name=pair]")
    page.keyboard.press("Enter")
    page.wait_for_url("**/bots/kb-bot")
    # The configuration block scrolls by keyboard: it is in the tab order, with a name.
    pre = page.locator("pre.config")
    assert pre.get_attribute("tabindex") == "0" and pre.get_attribute("aria-label")
    context.close()


def test_dark_theme_follows_the_os_and_the_toggle_persists(chromium, server, fleet):
    context = chromium.new_context(viewport=DESKTOP, color_scheme="dark", reduced_motion="reduce")
    page = context.new_page()
    log_in(page, server, "admin")
    background = "() => getComputedStyle(document.documentElement).backgroundColor"
    dark = page.evaluate(background)
    toggle = page.locator("[data-theme-toggle]")
    assert toggle.is_visible() and toggle.inner_text() == "Light theme"  # what it switches to
    screenshot(page, "list-desktop-dark")

    toggle.click()
    light = page.evaluate(background)
    assert light != dark and toggle.inner_text() == "Dark theme"
    page.goto(server.url + "/bots/sharp-bot")  # another page: the choice is kept
    assert page.evaluate("() => document.documentElement.dataset.theme") == "light"
    assert page.evaluate(background) == light
    context.close()

    # Without JavaScript: no toggle, and the OS theme applies.
    context = chromium.new_context(viewport=DESKTOP, color_scheme="dark",
                                   reduced_motion="reduce", java_script_enabled=False)
    page = context.new_page()
    page.goto(server.url + "/login")
    assert page.locator("[data-theme-toggle]").is_hidden()
    assert page.evaluate(background) == dark
    context.close()


def test_screenshots_of_the_main_pages(chromium, server, fleet):
    """For README and review: the list, a detail page and the recovery desk, light and dark."""
    for name, viewport, scheme in (("desktop", DESKTOP, "light"), ("phone", PHONE, "light"),
                                   ("phone-dark", PHONE, "dark")):
        context = chromium.new_context(viewport=viewport, color_scheme=scheme)
        page = context.new_page()
        log_in(page, server, "admin")
        screenshot(page, f"list-{name}")
        page.goto(server.url + "/bots/sharp-bot")
        screenshot(page, f"detail-{name}")
        page.goto(server.url + "/recovery")
        screenshot(page, f"recovery-{name}")
        context.close()
