"""An edit conflict is a three-way merge (issue 11, item 4): the form carries the version and
the values it was loaded from; on a conflict, fields the user did not touch take the newly
saved values, fields both changed are shown theirs / yours with the difference marked, and
saving the page again loses nothing. Real PostgreSQL; the pages as a browser posts them."""

from __future__ import annotations

import html
import json
from html.parser import HTMLParser

from dashboard.edit_merge import marked_difference, merge_edit
from dashboard.models import Bot, db


class FormFields(HTMLParser):
    """The name/value pairs a browser would submit from the edit form (inputs and textarea)."""

    def __init__(self):
        super().__init__()
        self.fields: dict[str, str] = {}
        self._textarea: str | None = None
        self._in_form = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and attrs.get("method") == "post" and "/edit" in attrs.get("action", ""):
            self._in_form = True
        elif self._in_form and tag == "input" and attrs.get("name"):
            self.fields[attrs["name"]] = attrs.get("value") or ""
        elif self._in_form and tag == "textarea":
            self._textarea = attrs["name"]
            self.fields[self._textarea] = ""

    def handle_data(self, data):
        if self._textarea:
            self.fields[self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None
        elif tag == "form":
            self._in_form = False


def form_of(page: str) -> dict[str, str]:
    parser = FormFields()
    parser.feed(page)
    return parser.fields


def loaded_form(client, bot_id: str = "pmm-btc") -> dict[str, str]:
    return form_of(client.get(f"/bots/{bot_id}/edit").get_data(as_text=True))


def fresh(bot_id: str = "pmm-btc") -> Bot:
    db.session.expire_all()
    return db.session.get(Bot, bot_id)


def test_the_edit_form_carries_its_version_and_the_values_it_was_loaded_from(login, make_bot):
    make_bot()
    form = loaded_form(login.as_admin())
    assert form["version"] == "1"
    assert form["base_pair"] == "BTC-USDT" and form["base_connector"] == "binance"
    assert json.loads(form["base_config"]) == {"order_amount": 0.01, "bid_spread": 0.002}


def test_an_untouched_field_takes_the_newly_saved_value_and_saving_again_loses_nothing(
        login, make_bot):
    make_bot()
    admin = login.as_admin()
    mine = loaded_form(admin)  # loaded before the other save
    theirs = loaded_form(admin)
    assert admin.post("/bots/pmm-btc/edit", data={**theirs, "pair": "ETH-USDT"}) \
        .status_code == 302

    response = admin.post("/bots/pmm-btc/edit", data={**mine, "connector": "kucoin"})
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "Conflict: nothing was saved." in page
    merged = form_of(page)
    assert merged["pair"] == "ETH-USDT"  # untouched here: their new value
    assert merged["connector"] == "kucoin"  # changed only here: mine
    assert 'id="conflict-' not in page  # nothing both changed
    assert "Fields you had not changed now show their new values: <strong>Pair</strong>" in page
    assert fresh().connector == "binance"  # nothing was saved by the conflict

    # Saving the page as it stands keeps both changes.
    assert admin.post("/bots/pmm-btc/edit", data=merged).status_code == 302
    bot = fresh()
    assert (bot.pair, bot.connector, bot.version) == ("ETH-USDT", "kucoin", 3)


def test_a_field_both_changed_is_shown_both_ways_with_the_difference_marked(login, make_bot):
    make_bot()
    admin = login.as_admin()
    mine = loaded_form(admin)
    theirs = loaded_form(admin)
    admin.post("/bots/pmm-btc/edit", data={**theirs, "pair": "ETH-USDT",
                                           "config": '{"order_amount": 0.5}'})

    response = admin.post("/bots/pmm-btc/edit", data={
        **mine, "pair": "SOL-USDT", "config": '{"order_amount": 0.01, "bid_spread": 0.004}'})
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    row = page.split('id="conflict-pair"')[1].split("</tr>")[0]
    assert '<pre class="theirs"><del>ETH</del>-USDT</pre>' in row
    assert '<pre class="yours"><ins>SOL</ins>-USDT</pre>' in row
    config_row = html.unescape(page.split('id="conflict-config"')[1].split("</tr>")[0])
    assert '<del>  "order_amount": 0.5\n</del>' in config_row
    assert '<ins>  "bid_spread": 0.004,\n  "order_amount": 0.01\n</ins>}' in config_row
    assert '<pre class="theirs">{\n<del>' in config_row  # the shared brace is not marked
    merged = form_of(page)
    assert merged["pair"] == "SOL-USDT"  # the form keeps mine until I change it
    assert "saved now: ETH-USDT" in page  # and says what theirs is beside the field
    assert merged["version"] == "2" and merged["base_pair"] == "ETH-USDT"

    # Choosing theirs for the pair and saving: their pair stays, my config is stored.
    assert admin.post("/bots/pmm-btc/edit", data={**merged, "pair": "ETH-USDT"}) \
        .status_code == 302
    bot = fresh()
    assert (bot.pair, bot.config) == ("ETH-USDT", {"order_amount": 0.01, "bid_spread": 0.004})


def test_a_form_without_its_loaded_values_treats_every_difference_as_a_conflict(login,
                                                                              make_bot):
    """An old form or a script sends only a version: nothing is guessed."""
    from tests.conftest import make_bot_data

    make_bot()
    admin = login.as_admin()
    admin.post("/bots/pmm-btc/edit", data=make_bot_data(pair="ETH-USDT", version=1))
    response = admin.post("/bots/pmm-btc/edit", data=make_bot_data(connector="kucoin",
                                                                   version=1))
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert 'id="conflict-pair"' in page and 'id="conflict-connector"' in page


def test_merge_rules_field_by_field():
    base = {"name": "a", "account_identifier": "x", "strategy": "s", "connector": "c",
            "pair": "BTC-USDT", "config": '{"a": 1}'}
    theirs = {**base, "name": "b", "pair": "ETH-USDT", "config": '{"a": 2}'}
    yours = {**base, "connector": "d", "pair": "SOL-USDT", "config": '{\n  "a": 1\n}'}
    merge = merge_edit(theirs, base, yours)
    assert merge.values["name"] == "b" and merge.values["config"] == '{"a": 2}'
    assert merge.taken == ["name", "config"]  # reformatted JSON is not a change
    assert merge.values["connector"] == "d"
    assert list(merge.conflicts) == ["pair"]
    assert merge.conflicts["pair"].theirs == "ETH-USDT"


def test_marked_difference_marks_only_what_differs():
    assert marked_difference("BTC-USDT", "BTC-USDC") == (
        [("BTC-USD", False), ("T", True)], [("BTC-USD", False), ("C", True)])
