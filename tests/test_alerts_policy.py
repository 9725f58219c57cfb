"""The outbound policy: no metadata, link-local or (in production) private or loopback target;
https only in production unless allowed; checked when saving and when sending."""

from __future__ import annotations

import pytest

from dashboard.alerts import service
from dashboard.alerts.policy import PolicyError, check_host, check_url
from dashboard.config import load_settings
from dashboard.validation import ValidationError

PRODUCTION = load_settings({"APP_ENV": "production"}).as_flask_config()
DEVELOPMENT = load_settings({"APP_ENV": "development"}).as_flask_config()


def fixed(*addresses):
    return lambda host, port: list(addresses)


def test_production_defaults_refuse_http_loopback_and_private():
    assert not PRODUCTION["ALERTS_ALLOW_HTTP"]
    assert not PRODUCTION["ALERTS_ALLOW_LOOPBACK"]
    assert not PRODUCTION["ALERTS_ALLOW_PRIVATE"]
    check_url("https://hooks.example.com/x", PRODUCTION, fixed("93.184.216.34"))
    with pytest.raises(PolicyError, match="https"):
        check_url("http://hooks.example.com/x", PRODUCTION, fixed("93.184.216.34"))
    for address in ("127.0.0.1", "::1", "10.1.2.3", "192.168.1.9", "172.16.0.5", "fc00::1"):
        with pytest.raises(PolicyError):
            check_url("https://inside.example.com/x", PRODUCTION, fixed(address))


@pytest.mark.parametrize("address", ["169.254.169.254", "169.254.10.10", "fe80::1",
                                     "fd00:ec2::254", "::ffff:169.254.169.254", "0.0.0.0",  # noqa: S104
                                     "224.0.0.1"])
def test_metadata_and_link_local_are_refused_even_where_everything_else_is_allowed(address):
    relaxed = {**DEVELOPMENT, "ALERTS_ALLOW_LOOPBACK": True, "ALERTS_ALLOW_PRIVATE": True,
               "ALERTS_ALLOW_HTTP": True}
    with pytest.raises(PolicyError):
        check_url("http://somewhere.example.com/", relaxed, fixed(address))


@pytest.mark.parametrize("host", ["metadata.google.internal", "METADATA.google.internal.",
                                  "metadata"])
def test_metadata_names_are_refused_before_resolving(host):
    with pytest.raises(PolicyError, match="metadata"):
        check_host(host, 80, DEVELOPMENT, fixed("8.8.8.8"))


def test_one_bad_address_among_several_refuses_the_name():
    with pytest.raises(PolicyError):
        check_url("https://mixed.example.com/", PRODUCTION,
                  fixed("93.184.216.34", "169.254.169.254"))


@pytest.mark.parametrize("url", ["ftp://x.example.com/", "https://user:pw@x.example.com/",
                                 "https:///nohost", "file:///etc/passwd", "not a url"])
def test_malformed_or_odd_urls_are_refused(url):
    with pytest.raises(PolicyError):
        check_url(url, DEVELOPMENT, fixed("93.184.216.34"))


def test_real_resolution_of_loopback_names(app):
    with pytest.raises(PolicyError, match="this machine"):
        check_url("https://localhost/x", PRODUCTION)
    check_url("http://localhost/x", {**PRODUCTION, "ALERTS_ALLOW_HTTP": True,
                                     "ALERTS_ALLOW_LOOPBACK": True})


@pytest.mark.parametrize("data,field", [
    ({"kind": "webhook", "target": "http://169.254.169.254/latest/meta-data/",
      "signing_secret": "x" * 20}, "target"),
    ({"kind": "slack", "target": "http://[fe80::1]/hook"}, "target"),
    ({"kind": "discord", "target": "http://metadata.google.internal/computeMetadata/v1/"},
     "target"),
    ({"kind": "email", "host": "169.254.169.254", "port": "25", "from": "a@example.com",
      "to": "b@example.com"}, "host"),
])
def test_saving_a_destination_checks_the_policy(app, accounts, data, field):
    with pytest.raises(ValidationError) as refused:
        service.save_destination({"name": "bad", **data}, accounts.admin)
    assert field in refused.value.errors


def test_saving_refuses_loopback_when_not_allowed(app, accounts, monkeypatch):
    monkeypatch.setitem(app.config, "ALERTS_ALLOW_LOOPBACK", False)
    with pytest.raises(ValidationError) as refused:
        service.save_destination({"name": "self", "kind": "slack",
                                  "target": "http://127.0.0.1:5000/admin"}, accounts.admin)
    assert "this machine" in refused.value.errors["target"]
