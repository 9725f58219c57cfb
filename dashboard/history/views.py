"""History pages: the account page, statements (CSV), and the JSON history routes.

Views read input, call services, render. Access goes through dashboard/access.py:
`account_or_404` for accounts, `get_bot_or_404` for bots.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import TypeVar

from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from markupsafe import Markup

from ..access import account_or_404, get_bot_or_404
from ..alerts.pages import open_alerts_box, open_alerts_for_account, remember_firing_count
from ..models import Bot
from ..registry import utcnow
from ..validation import HUMMINGBOT_NAME
from . import services  # imports .models: the tables join the metadata (drift check)
from .charts import amount, chart_labels, chart_table, line_chart, sign_class, sparkline

bp = Blueprint("history", __name__)
T = TypeVar("T")

MAX_STATEMENT_DAYS = 3660
DEFAULT_STATEMENT_DAYS = 30


@bp.app_template_filter("amount")
def amount_filter(value, quote: str = "", signed: bool = True) -> str:
    return amount(value, quote, signed=signed)


bp.add_app_template_filter(sign_class, "sign_class")


# ------------------------------------------------------------------------------ helpers
def shared_render(key: tuple, render: Callable[[], T]) -> T:
    """A page block (or figures) rendered once per key in this process (RowsCache, as the
    list's rows). Keys hold what the block shows depends on, read before the rows it shows
    (`viewer_page_state`): never older than the table. Blocks with relative times ("4 min
    ago") hold the minute and render them against it."""
    return current_app.extensions["history_cache"].get_or_render(key, render)


def now_to_the_minute() -> datetime:
    return utcnow().replace(second=0, microsecond=0)


def viewer_scope() -> tuple:
    """Who a shared block was rendered for: viewers of the same scope see the same page
    (access is checked per request, before the block is looked up)."""
    return current_user.role, current_user.account_identifier


def viewer_page_state(*, account: str | None = None,
                      bot_id: str | None = None) -> services.PageState:
    """A bot's or an account's page's figures (services.bot_page_state, account_page_state):
    the keys of its shared blocks, and the bell's count, handed to the header."""
    firing = current_user.is_admin
    state = services.bot_page_state(bot_id, firing=firing) if bot_id is not None else \
        services.account_page_state(account, firing=firing)
    if state.firing is not None:
        remember_firing_count(state.firing)
    return state


def bot_performance(bot: Bot, range_key: str | None, state: services.PageState) -> Markup:
    """The bot page's history block for the chosen range: the chart, its table, its runs.
    The same for everyone who may open the bot, so rendered once a minute per range."""
    rng = services.RANGES.get(range_key or "", services.RANGES["7d"])
    now = now_to_the_minute()
    key = ("bot", bot.id, bot.name, bot.pair, rng.key, now, state.history)
    return shared_render(key, lambda: _render_bot_performance(bot, rng, now))


def _render_bot_performance(bot: Bot, rng: services.Range, now: datetime) -> Markup:
    series = services.bot_series(bot.id, rng, now)
    quote = services.quote_of(bot.pair)
    since = now - rng.span if rng.span else None
    with_time = rng.key != "all"
    perf = {
        "range": rng, "ranges": services.RANGES, "series": series, "quote": quote,
        "chart": line_chart(series, quote, since=since, now=now, with_time=with_time,
                            label=f"{bot.name}: cumulative PnL and volume, {rng.label}"),
        "table": chart_table(series, quote, with_time=with_time),
        "labels": chart_labels(series, quote, since=since, now=now, with_time=with_time),
        "runs": services.bot_runs(bot.id)}
    return Markup(render_template(  # noqa: S704 - a Jinja render, autoescaped
        "history/_bot_performance.html", bot=bot, perf=perf))


def list_history(bots: list[Bot]) -> dict:
    """For a page of the list: a sparkline per bot and totals per account on the page, in
    two queries whatever the page holds."""
    now = utcnow()
    lines = services.sparklines([b.id for b in bots], now)
    quotes = {b.id: services.quote_of(b.pair) for b in bots}
    accounts = sorted({b.account_identifier for b in bots})
    return {"sparks": {bot_id: sparkline(line, quotes[bot_id]) for bot_id, line in lines.items()},
            "account_totals": services.totals_by_account(accounts)}


def parse_period(args) -> tuple[date, date, dict[str, str]]:
    """(first day, last day, field errors) from `from` and `to` (YYYY-MM-DD, UTC days)."""
    today = utcnow().date()
    errors: dict[str, str] = {}
    values = {}
    defaults = {"from": today - timedelta(days=DEFAULT_STATEMENT_DAYS - 1), "to": today}
    for key, default in defaults.items():
        raw = (args.get(key) or "").strip()
        if not raw:
            values[key] = default
            continue
        try:
            values[key] = date.fromisoformat(raw) if len(raw) == 10 else None
        except ValueError:
            values[key] = None
        if values[key] is None:
            errors[key] = "must be a date written YYYY-MM-DD."
            values[key] = default
    if not errors:
        if values["from"] > values["to"]:
            errors["from"] = "must not be after the last day."
        elif (values["to"] - values["from"]).days >= MAX_STATEMENT_DAYS:
            errors["from"] = f"a statement covers at most {MAX_STATEMENT_DAYS} days."
    return values["from"], values["to"], errors


def _csv_response(rows: list[dict], filename: str) -> Response:
    return Response(services.statement_csv(rows), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})


def _filename(name: str, first: date, last: date) -> str:
    stem = name if HUMMINGBOT_NAME.match(name) else "statement"
    return f"{stem}-{first.isoformat()}-{last.isoformat()}.csv"


def _totals(rows: list[dict]) -> dict[str, dict[str, float]]:
    totals: dict[str, dict[str, float]] = defaultdict(
        lambda: dict.fromkeys(("realized_pnl", "unrealized_pnl_change", "global_pnl",
                               "volume"), 0.0))
    for row in rows:
        for key in totals[row["quote"]]:
            totals[row["quote"]][key] += row[key]
    return dict(totals)


def _json_rows(rows: list[dict]) -> list[dict]:
    return [{**row, "date": row["date"].isoformat()} for row in rows]


# ------------------------------------------------------------------------------ pages
@bp.route("/accounts/<account>")
def account(account: str):
    # The figures first: they tell the access check whether the account exists (one
    # statement, not two), and key the shared blocks read after them.
    state = viewer_page_state(account=account)
    account = account_or_404(account, exists=state.counts["all"] > 0)
    now = utcnow()
    minute = now_to_the_minute()
    figures = shared_render(("account", account, minute, state.history),
                            lambda: _render_account_figures(account, minute))
    # Clients never see archived definitions (access.visible_bots); admins do.
    archived_visible = current_user.is_admin
    # Best and worst of the last 30 days change with the history (samples, pruning) and with
    # the bots (names, archiving): keyed by both, and the day the 30 days end on.
    ranked = shared_render(
        ("ranked", account, now.date(), state.history, state.generation, archived_visible),
        lambda: _render_ranked(account, now, archived_visible))
    # Events and open alerts: keyed by the generation (new events bump it too) and the open
    # alerts' fingerprint.
    recent = shared_render(
        ("recent", account, *viewer_scope(), state.generation, state.open_alerts, minute),
        lambda: _render_recent(account, minute, archived_visible))
    return render_template("accounts/show.html", account=account, figures=figures,
                           ranked=ranked, recent=recent, counts=state.counts)


def _render_ranked(account: str, now: datetime, archived_visible: bool) -> Markup:
    best, worst = services.best_and_worst(account, now, archived_visible=archived_visible)
    return Markup(render_template(  # noqa: S704 - a Jinja render, autoescaped
        "history/_ranked.html", best=best, worst=worst))


def _render_recent(account: str, now: datetime, archived_visible: bool) -> dict[str, Markup]:
    """The account's open alerts (at the top of the page) and latest events (at the end)."""
    alerts = open_alerts_for_account(account, current_user)
    events = services.recent_events(account, archived_visible=archived_visible)
    return {"alerts": open_alerts_box(alerts, {"account": account}, now=now, show_bot=True),
            "events": Markup(render_template(  # noqa: S704 - a Jinja render, autoescaped
                "history/_recent.html", events=events, now=now))}


def _render_account_figures(account: str, now: datetime) -> Markup:
    """PnL and volume by period and the cumulative chart: the same for every viewer of the
    account (every bot counts, archived ones too: their results were the account's)."""
    figures, series = services.account_overview(account, now)
    charts = {quote: {"series": line, "labels": chart_labels(
                          line, quote, since=None, now=now, with_time=False),
                      "chart": line_chart(line, quote, since=None, now=now, with_time=False,
                                          label=f"{account}: cumulative PnL, all bots, by day"),
                      "table": chart_table(line, quote, with_time=False)}
              for quote, line in series.items()}
    return Markup(render_template(  # noqa: S704 - a Jinja render, autoescaped
        "history/_account_figures.html", figures=figures, charts=charts))


@bp.route("/accounts/<account>/statement")
def account_statement(account: str):
    account = account_or_404(account)
    return _statement(account=account, title=account, name=account)


@bp.route("/bots/<bot_id>/statement")
def bot_statement(bot_id: str):
    bot = get_bot_or_404(bot_id)
    return _statement(bot=bot, title=bot.name, name=bot.id)


def _statement(*, title: str, name: str, account: str | None = None, bot: Bot | None = None):
    """GET with `format=csv` downloads; otherwise (or with errors) the form, with the input."""
    first, last, errors = parse_period(request.args)
    if request.args.get("format") == "csv" and not errors:
        rows = services.statement_rows(account=account, bot=bot, first=first, last=last)
        return _csv_response(rows, _filename(name, first, last))
    rows = [] if errors else services.statement_rows(account=account, bot=bot, first=first,
                                                     last=last)
    return render_template(
        "history/statement.html", title=title, account=account, bot=bot, errors=errors,
        values={"from": request.args.get("from", first.isoformat()),
                "to": request.args.get("to", last.isoformat())},
        rows=rows, totals=_totals(rows)), 400 if errors else 200


# ------------------------------------------------------------------------------ JSON
def _json_history(*, account: str | None = None, bot: Bot | None = None):
    first, last, errors = parse_period(request.args)
    if errors:
        return jsonify(error="invalid period", fields=errors), 400
    rows = services.statement_rows(account=account, bot=bot, first=first, last=last)
    return jsonify(account=account or bot.account_identifier, bot_id=bot.id if bot else None,
                   first_day=first.isoformat(), last_day=last.isoformat(),
                   rows=_json_rows(rows), totals=_totals(rows))


@bp.route("/api/accounts/<account>/history")
def api_account_history(account: str):
    return _json_history(account=account_or_404(account))


@bp.route("/api/bots/<bot_id>/history")
def api_bot_history(bot_id: str):
    return _json_history(bot=get_bot_or_404(bot_id))


def landing_url_for(user) -> str | None:
    """Clients land on their account's page; admins on the list (None)."""
    if user.is_admin or not user.account_identifier:
        return None
    return url_for("history.account", account=user.account_identifier)

