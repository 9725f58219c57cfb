"""Security headers on every kind of response (ASVS 3.2.1, 3.4.1-3.4.6, 14.3.2), a strict CSP
the templates can live with, and production start-up refusals (ASVS 13.3.1, 13.4.2).

The route matrix checks the headers on every route for every role; this file covers the
responses no route returns on purpose: errors, fragments, redirects, static files, JSON.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dashboard import create_app
from dashboard.config import ConfigError, load_settings, validate_production
from dashboard.web import HTMX_CDN_URL, content_security_policy
from tests.conftest import base_config

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def assert_secure_headers(response, label=""):
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, label
    assert "frame-ancestors 'none'" in csp, label
    assert "object-src 'none'" in csp or "default-src 'none'" in csp, label
    assert headers["X-Content-Type-Options"] == "nosniff", label
    assert headers["Referrer-Policy"] == "same-origin", label
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin", label
    assert headers["X-Request-ID"], label
    assert "HX-Request" in headers.get("Vary", ""), label


@pytest.fixture
def responses(app, client, login, make_bot, monkeypatch):
    make_bot(id="sharp-bot", name="sharp-bot")
    admin = login.as_admin()
    got = {
        "login page": client.get("/login"),
        "login failure (401)": client.post("/login", data={"username": "x", "password": "y"}),
        "anonymous redirect (302)": client.get("/bots"),
        "anonymous htmx (HX-Redirect)": client.get("/bots", headers={"HX-Request": "true"}),
        "anonymous API (401 JSON)": client.get("/api/bots"),
        "page": admin.get("/bots"),
        "fragment": admin.get("/bots", headers={"HX-Request": "true"}),
        "live fragment": admin.get("/bots/sharp-bot", headers={"HX-Request": "true"}),
        "JSON": admin.get("/api/bots"),
        "not found (404)": admin.get("/no/such/page"),
        "not found JSON (404)": admin.get("/api/bots/nope"),
        "method not allowed (405)": admin.get("/logout"),
        "bad input (400)": admin.get("/bots?q=%00"),
        "static file": client.get("/static/app.css"),
        "health": client.get("/healthz"),
    }
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 64)
    got["too large (413)"] = admin.post("/bots/new", data={"config": "x" * 200})
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    got["CSRF refusal (400)"] = admin.post("/bots/sharp-bot/archive")
    return got


def test_every_kind_of_response_carries_the_headers(responses):
    for label, response in responses.items():
        assert_secure_headers(response, label)


def test_dynamic_responses_are_not_cached_static_ones_may_be(responses):
    for label, response in responses.items():
        if label == "static file":
            assert response.headers.get("Cache-Control") != "no-store"
        else:
            assert response.headers["Cache-Control"] == "no-store", label


def test_json_is_sandboxed_and_pages_are_not(responses):
    assert "sandbox" in responses["JSON"].headers["Content-Security-Policy"]
    assert "sandbox" not in responses["page"].headers["Content-Security-Policy"]


def test_error_pages_show_a_request_id_and_nothing_internal(responses):
    for label in ("not found (404)", "method not allowed (405)", "too large (413)",
                  "CSRF refusal (400)", "bad input (400)"):
        response = responses[label]
        body = response.get_data(as_text=True)
        assert response.headers["X-Request-ID"] in body, label
        assert "Traceback" not in body and "werkzeug" not in body.lower(), label


def test_the_csp_is_strict_in_both_htmx_modes():
    for source in ("cdn", "local"):
        csp = dict(d.strip().split(" ", 1) for d in content_security_policy(source).split(";"))
        assert csp["default-src"] == "'self'"
        assert csp["object-src"] == "'none'" and csp["base-uri"] == "'none'"
        assert csp["frame-ancestors"] == "'none'" and csp["form-action"] == "'self'"
        assert csp["script-src"] == (f"'self' {HTMX_CDN_URL}" if source == "cdn"
                                     else "'self'")
        assert "'unsafe-inline'" not in csp["style-src"]


def test_hsts_in_production_only(migrated, accounts, monkeypatch):
    dev = create_app(base_config(migrated)).test_client().get("/login")
    assert "Strict-Transport-Security" not in dev.headers
    prod = create_app(base_config(migrated, APP_ENV="production")).test_client().get("/login")
    hsts = prod.headers["Strict-Transport-Security"]
    assert "includeSubDomains" in hsts
    assert int(re.search(r"max-age=(\d+)", hsts).group(1)) >= 365 * 24 * 3600


def test_templates_need_no_inline_script_style_or_handlers():
    """What the CSP would block, the templates must not contain."""
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), template
        assert not re.search(r"\sstyle\s*=", text), template
        assert not re.search(r"\son[a-z]+\s*=", text), template
        assert "javascript:" not in text, template


def test_htmx_runs_without_eval_or_injected_styles(client):
    page = client.get("/login").get_data(as_text=True)
    meta = re.search(r'<meta name="htmx-config" content=\'([^\']+)\'', page).group(1)
    assert '"allowEval": false' in meta and '"includeIndicatorStyles": false' in meta
    assert '"allowScriptTags": false' in meta


def test_an_unexpected_error_is_a_generic_500_with_a_request_id(migrated, accounts, caplog):
    """Nothing of the exception reaches the page: no message, no SQL, no stack trace. The
    log keeps it, under the same request id."""
    app = create_app(base_config(migrated))

    @app.route("/explode")
    def explode():
        raise RuntimeError("SELECT password_hash FROM users -- Hummingbot said: secret body")

    from dashboard.access import public

    public(explode)
    response = app.test_client().get("/explode")
    body = response.get_data(as_text=True)
    assert response.status_code == 500
    assert_secure_headers(response)
    assert response.headers["X-Request-ID"] in body
    for leak in ("SELECT", "password_hash", "secret body", "Traceback", "RuntimeError"):
        assert leak not in body
    logged = [r for r in caplog.records if r.exc_info]
    assert logged and response.headers["X-Request-ID"] in logged[-1].getMessage()


# ------------------------------------------------------------------ production start-up
PRODUCTION = {
    "APP_ENV": "production", "SECRET_KEY": "Zq3-production-like-key-for-start-up-81f0c2",
    "DATABASE_URL": "postgres://u:p@db/app", "HUMMINGBOT_API_URL": "https://hb.example",
    "HUMMINGBOT_API_USERNAME": "operator", "HUMMINGBOT_API_PASSWORD": "s3cret-and-long",
}


@pytest.mark.parametrize(("overrides", "complaint"), [
    ({"SECRET_KEY": "x" * 40}, "patterned"),
    ({"SECRET_KEY": "ab" * 20}, "patterned"),
    ({"SECRET_KEY": "dev-only-secret-key-change-me"}, "SECRET_KEY"),
    ({"FLASK_DEBUG": "true"}, "FLASK_DEBUG"),
    ({"HUMMINGBOT_API_USERNAME": "admin", "HUMMINGBOT_API_PASSWORD": "admin"}, "admin/admin"),
    ({"SESSION_MAX_HOURS": "0"}, "SESSION_MAX_HOURS"),
    ({"TRUSTED_PROXY_COUNT": "-1"}, "TRUSTED_PROXY_COUNT"),
    ({"LOGIN_MAX_FAILURES_PER_IP": "nope"}, "LOGIN_MAX_FAILURES_PER_IP"),
])
def test_production_refuses_unsafe_settings(overrides, complaint):
    """(tests/test_app.py covers the missing key, a short key and a missing database.)"""
    with pytest.raises(ConfigError, match=complaint):
        validate_production(load_settings({**PRODUCTION, **overrides}))


def test_a_random_production_key_is_accepted():
    import secrets

    for _ in range(50):
        validate_production(load_settings({**PRODUCTION, "SECRET_KEY": secrets.token_hex(16)}))
