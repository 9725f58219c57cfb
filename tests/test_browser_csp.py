"""In Chromium, under the real Content-Security-Policy: logging in, listing, polling (every
second), opening a bot, editing it and logging out record zero CSP violations (ASVS 3.4.3).

Violations are caught twice: the page's `securitypolicyviolation` events, reported through a
binding that outlives navigations, and the console messages Chromium prints. A control step
at the end provokes one violation on purpose, so a silent watcher cannot pass the test.
"""

from __future__ import annotations

import pytest

from tests.browser import CspWatcher, log_out, screenshot
from tests.conftest import TEST_PASSWORD, make_bot_data
from tests.servers import ROOT, Browser, running_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.reportCsp(`${event.violatedDirective} blocked ${event.blockedURI} at ${location.pathname}`
  );
});
"""



@pytest.fixture
def server(committed_app, migrated, server_env, simulator):
    with running_server(migrated, **{**server_env, "STATUS_POLL_SECONDS": "1"}) as running:
        yield running


def _wait_for_polls(page, count=2):
    for _ in range(count):
        with page.expect_response(lambda r: r.request.headers.get("hx-request") == "true",
                                  timeout=15_000) as polled:
            pass
        assert polled.value.status == 200


def test_a_whole_session_runs_without_a_single_csp_violation(chromium, server, simulator):
    admin = Browser(server.url).login("admin", TEST_PASSWORD)
    assert admin.submit("/bots/new", make_bot_data(id="csp-bot", name="csp-bot")) \
        .status_code == 302
    simulator.seed_bot("csp-bot", controllers=["pmm_btc_1"])  # live data in the polled rows

    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    reported: list[str] = []
    context.expose_binding("reportCsp", lambda _source, text: reported.append(text))
    context.add_init_script(REPORT_VIOLATIONS)
    page = context.new_page()
    console = CspWatcher(page)

    page.goto(server.url + "/login")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/bots")
    _wait_for_polls(page)  # the list refreshes itself
    assert page.locator("#bot-csp-bot").is_visible()

    page.click("#bot-csp-bot a")
    page.wait_for_url("**/bots/csp-bot")
    _wait_for_polls(page)  # so does a bot's live panel
    screenshot(page, "csp-detail-polling")

    page.goto(server.url + "/bots/csp-bot/edit")
    page.fill("input[name=pair]", "ETH-USDT")
    page.click("text=Save")
    page.wait_for_url("**/bots/csp-bot")
    assert "ETH-USDT" in page.content()

    log_out(page)
    assert reported == [] and console.violations == []

    # Control: the page does report a violation when there is one (blocked before any request).
    directive = page.evaluate("""() => new Promise((resolve) => {
        setTimeout(() => resolve("no violation reported within 10 s"), 10000);
        document.addEventListener("securitypolicyviolation",
                                  (event) => resolve(event.violatedDirective), {once: true});
        const img = document.createElement("img");
        img.src = "https://blocked.invalid/pixel.png";
        document.body.appendChild(img);
    })""")
    assert directive == "img-src"
    context.close()


def test_the_cdn_may_serve_the_pinned_htmx_file_and_nothing_else(chromium, committed_app,
                                                                  migrated, server_env):
    """With HTMX_SOURCE=cdn, Chromium loads the pinned htmx from the CDN (served here by a
    route, byte for byte the vendored file, so its SRI matches) and refuses any other file of
    the same CDN before asking for it: the CSP names the file, not the origin."""
    from dashboard.web import HTMX_CDN_URL, HTMX_LOCAL_FILE

    body = (ROOT / "static" / HTMX_LOCAL_FILE).read_bytes()
    with running_server(migrated, **{**server_env, "HTMX_SOURCE": "cdn"}) as server:
        context = chromium.new_context()
        asked: list[str] = []

        def serve(route):
            asked.append(route.request.url)
            route.fulfill(status=200, body=body, content_type="application/javascript",
                          headers={"Access-Control-Allow-Origin": "*"})

        context.route("https://cdn.jsdelivr.net/**", serve)
        page = context.new_page()
        page.goto(server.url + "/login")
        page.wait_for_function("() => window.htmx !== undefined")
        blocked = page.evaluate("""() => new Promise((resolve) => {
            setTimeout(() => resolve("not blocked within 10 s"), 10000);
            document.addEventListener("securitypolicyviolation",
                (event) => resolve(event.violatedDirective + " " + event.blockedURI), {once: true});
            const script = document.createElement("script");
            script.src = "https://cdn.jsdelivr.net/npm/htmx.org@2.0.8/dist/ext/debug.js";
            document.head.appendChild(script);
        })""")
        context.close()
    assert blocked.startswith("script-src") and blocked.endswith("/dist/ext/debug.js"), blocked
    assert asked == [HTMX_CDN_URL]
