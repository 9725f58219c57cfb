"""Reading the history: chart series, sparklines, account figures and statements.

Everything here reads PostgreSQL only, so every page works while Hummingbot is down. Sums of
deltas (models.py): a period's PnL is the SUM of its deltas, the figure at a time is the
running total minus what came after. Days are UTC calendar days; "7 d" is today and the six
days before, the same days a statement for that period lists, so the two always agree.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import String, bindparam, text

from ..alerts.service import ADMIN_FIRING_COUNT
from ..models import Bot, db
from ..servers import SERVER_ROWS
from ..status import TRADING
from .models import DAY, HOUR

QUOTE = "COALESCE(NULLIF(split_part(b.pair, '-', 2), ''), 'quote')"


def quote_of(pair: str) -> str:
    """The pair's quote currency (BTC-USDT -> USDT): the unit of every PnL and volume."""
    _, _, quote = pair.partition("-")
    return quote or "quote"


@dataclass(frozen=True)
class Range:
    key: str
    label: str
    span: timedelta | None  # None: everything kept
    resolution: int
    bucket: timedelta


RANGES = {
    # Hourly rows hold every sample's deltas as it is written (sampling.py), so a day is
    # drawn from 24 of them rather than from 1,440 raw samples per controller.
    "24h": Range("24h", "24 h", timedelta(hours=24), HOUR, timedelta(hours=1)),
    "7d": Range("7d", "7 d", timedelta(days=7), HOUR, timedelta(hours=1)),
    "30d": Range("30d", "30 d", timedelta(days=30), HOUR, timedelta(hours=6)),
    "all": Range("all", "All", None, DAY, timedelta(days=1)),
}


@dataclass
class Series:
    """Points (bucket start, cumulative global PnL at its end, volume in it) and run starts."""

    points: list[tuple[datetime, float, float]] = field(default_factory=list)
    runs: list[datetime] = field(default_factory=list)
    start: float = 0.0  # the cumulative figure before the range began
    total_pnl: float = 0.0
    total_volume: float = 0.0

    @property
    def change(self) -> float:
        """PnL within the range."""
        return self.total_pnl - self.start


MAX_POINTS = 180  # a chart and its table stay small whatever the range holds


def _coarsen(rows: list, limit: int = MAX_POINTS) -> list:
    """Merge neighbouring buckets (sums, so totals hold) until at most `limit` remain."""
    size = -(-len(rows) // limit)  # ceiling division
    if size <= 1:
        return rows
    return [(chunk[0][0], sum(r[1] for r in chunk), sum(r[2] for r in chunk))
            for chunk in (rows[i:i + size] for i in range(0, len(rows), size))]


def _cumulate(rows, total_pnl: float, total_volume: float) -> Series:
    """Rows of (bucket, pnl delta, volume) in order -> cumulative points ending at the total."""
    rows = _coarsen(list(rows))
    in_range = sum(r[1] for r in rows)
    running = total_pnl - in_range  # the figure before the range began
    series = Series(start=running, total_pnl=total_pnl, total_volume=total_volume)
    for bucket, pnl, volume in rows:
        running += pnl
        series.points.append((bucket, running, volume))
    return series


BOT_SERIES = text("""
    SELECT date_bin(CAST(:bucket AS interval), at, TIMESTAMP '2000-01-01') AS t,
           sum(global_pnl), sum(volume)
    FROM performance_points
    WHERE bot_id = :bot_id AND resolution = :resolution AND at >= :since
    GROUP BY 1 ORDER BY 1
""")

BOT_TOTALS = text("""
    SELECT COALESCE(sum(total_global_pnl), 0), COALESCE(sum(total_volume), 0)
    FROM performance_latest WHERE bot_id = :bot_id
""")


def _since(rng: Range, now: datetime) -> datetime:
    return now - rng.span if rng.span is not None else datetime(1970, 1, 1)


def bot_series(bot_id: str, rng: Range, now: datetime) -> Series:
    total_pnl, total_volume = db.session.execute(BOT_TOTALS, {"bot_id": bot_id}).one()
    rows = db.session.execute(BOT_SERIES, {
        "bucket": f"{int(rng.bucket.total_seconds())} seconds", "bot_id": bot_id,
        "resolution": rng.resolution, "since": _since(rng, now)}).all()
    series = _cumulate(rows, total_pnl, total_volume)
    series.runs = list(db.session.scalars(text(
        "SELECT started_at FROM performance_segments WHERE bot_id = :bot_id "
        "AND started_at >= :since ORDER BY started_at"),
        {"bot_id": bot_id, "since": _since(rng, now)}))
    return series


@dataclass(frozen=True)
class PageState:
    """A history page's small per-request figures, read in one statement (page_state)."""

    # (sampled_at, maintained_at): when the fleet was last sampled and last pruned or
    # backfilled. Both are written in the same transaction as the rows they change
    # (sampling.py, retention.py), so a cached chart keyed by them is never older than the
    # table, in any process.
    history: tuple
    generation: int  # bot_changes: any change to `bots` or new event bumps it (rows_cache.py)
    firing: int | None  # firing alerts, for an admin's bell (None: not asked)
    # A fingerprint of the bot's or the account's open alerts: a key for their shared render
    # that moves with any change to them (None: none open).
    open_alerts: str | None
    # The account's bots, running, attention, and every definition archived ones included
    # (`all`: the account exists while it is not 0). None: a bot's page.
    counts: dict[str, int] | None = None
    servers: list | None = None  # servers.SERVER_ROWS, for fleet's look (None: not asked)


# What every history page reads: the history state, the bots' generation and an admin's bell
# (CASE: a client's page does not count). Subqueries, not joins: each is one index or
# single-row read, in one statement per page, each was one of its own.
_STATE = """c.sampled_at, c.maintained_at,
           (SELECT generation FROM bot_changes WHERE id = 1),
           CASE WHEN :firing THEN """ + ADMIN_FIRING_COUNT + " END"  # noqa: S608 - constant
_CLOCK = "FROM (SELECT 1) AS one LEFT JOIN performance_clock c ON c.id = 1"


def _open_alerts(where: str) -> str:
    """A fingerprint of the open alerts `where` selects: every column of every row."""
    return ("(SELECT md5(string_agg(al::text, ',' ORDER BY al.id)) FROM alerts al "  # noqa: S608
            f"WHERE {where} AND al.state <> 'resolved')")  # `where`: a constant of this module


# Two statements, not one with every part behind a CASE: PostgreSQL plans a statement at
# every execution (psycopg2 prepares none), and planning the parts a page skips cost as much
# as reading the parts it needs.
BOT_PAGE_STATE = text(
    f"SELECT {_STATE}, {_open_alerts('al.bot_id = :bot')}, COALESCE({SERVER_ROWS}, '[]') "
    f"{_CLOCK}").bindparams(bindparam("bot", type_=String))
ACCOUNT_PAGE_STATE = text(f"""
    SELECT {_STATE}, {_open_alerts('al.account_identifier = :account')},
           a.bots, a.running, a.attention, a.every
    {_CLOCK}
    CROSS JOIN LATERAL (
        SELECT count(*) FILTER (WHERE archived_at IS NULL) AS bots,
               count(*) FILTER (WHERE archived_at IS NULL
                                AND display_status = ANY(:trading)) AS running,
               count(*) FILTER (WHERE needs_attention) AS attention,
               count(*) AS every
        FROM bots WHERE account_identifier = :account
    ) a
""").bindparams(bindparam("account", type_=String))  # noqa: S608 - constant SQL pieces


def bot_page_state(bot_id: str, *, firing: bool) -> PageState:
    """A bot page's figures: the history state, the bots' generation, an admin's bell count
    (`firing`), the bot's open alerts' fingerprint and the servers' rows (fleet.py's look)."""
    row = db.session.execute(BOT_PAGE_STATE, {"firing": firing, "bot": bot_id}).one()
    return PageState(history=(row[0], row[1]), generation=row[2], firing=row[3], counts=None,
                     open_alerts=row[4], servers=row[5])


def account_page_state(account: str, *, firing: bool) -> PageState:
    """An account page's: the same but the servers, its open alerts' fingerprint, and its
    counts (definitions, trading, needing attention, by the badge the list shows: the stored
    `display_status` and `needs_attention`; an archived bot that still runs counts there too;
    and every definition, archived ones too: the account exists while that is not 0)."""
    row = db.session.execute(ACCOUNT_PAGE_STATE, {"firing": firing, "account": account,
                                                  "trading": list(TRADING)}).one()
    return PageState(history=(row[0], row[1]), generation=row[2], firing=row[3],
                     open_alerts=row[4], counts={"bots": row[5], "running": row[6],
                                                 "attention": row[7], "all": row[8]})


def bot_runs(bot_id: str) -> list:
    return db.session.execute(text(
        "SELECT instance_name, started_at, ended_at, source FROM performance_segments "
        "WHERE bot_id = :bot_id ORDER BY started_at DESC LIMIT 20"), {"bot_id": bot_id}).all()


SPARKLINES = text("""
    SELECT bot_id, at, sum(global_pnl)
    FROM performance_points
    WHERE bot_id IN :ids AND resolution = 1 AND at >= :since
    GROUP BY bot_id, at
""").bindparams(bindparam("ids", expanding=True))


def sparklines(bot_ids: list[str], now: datetime) -> dict[str, list[float]]:
    """The last 24 hours of each bot, hour by hour: the PnL change since the window began.
    One query for the whole page."""
    if not bot_ids:
        return {}
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
    hours = [start + timedelta(hours=i) for i in range(24)]
    deltas: dict[str, dict[datetime, float]] = defaultdict(dict)
    for bot_id, at, pnl in db.session.execute(SPARKLINES, {"ids": bot_ids, "since": start}):
        deltas[bot_id][at] = pnl
    lines = {}
    for bot_id, by_hour in deltas.items():
        running, line = 0.0, [0.0]
        for hour in hours:
            running += by_hour.get(hour, 0.0)
            line.append(running)
        lines[bot_id] = line
    return lines


# ------------------------------------------------------------------------------ accounts
@dataclass
class Figures:
    today: float = 0.0
    d7: float = 0.0
    d30: float = 0.0
    all: float = 0.0
    volume_today: float = 0.0
    volume_d7: float = 0.0
    volume_d30: float = 0.0
    volume_all: float = 0.0


def period_start(today: date, days: int) -> datetime:
    """The first day of a period of `days` days ending today (UTC midnight)."""
    return datetime.combine(today - timedelta(days=days - 1), datetime.min.time())


def totals_by_account(accounts: list[str]) -> dict[str, dict[str, tuple[float, float]]]:
    """{account: {quote: (all-time PnL, all-time volume)}} for the list's account totals."""
    if not accounts:
        return {}
    result: dict[str, dict[str, tuple[float, float]]] = defaultdict(dict)
    rows = db.session.execute(text(f"""
        SELECT b.account_identifier, {QUOTE}, sum(l.total_global_pnl), sum(l.total_volume)
        FROM bots b JOIN performance_latest l ON l.bot_id = b.id
        WHERE b.account_identifier IN :accounts GROUP BY 1, 2 ORDER BY 1, 2
    """).bindparams(bindparam("accounts", expanding=True)),  # noqa: S608 - constant pieces
        {"accounts": accounts})
    for account, quote, pnl, volume in rows:
        result[account][quote] = (pnl or 0.0, volume or 0.0)
    return dict(result)


ACCOUNT_DAILY = text(f"""
    SELECT {QUOTE} AS quote, p.at, sum(p.global_pnl), sum(p.volume)
    FROM bots b JOIN performance_points p ON p.bot_id = b.id
    WHERE b.account_identifier = :account AND p.resolution = 2
    GROUP BY 1, 2 ORDER BY 1, 2
""")  # noqa: S608 - constant SQL pieces; values are bound


def account_overview(account: str, now: datetime) -> tuple[dict[str, Figures],
                                                           dict[str, Series]]:
    """PnL and volume today, 7 d, 30 d and all time, and the cumulative PnL day by day
    across every bot of the account, per quote currency: one query over the daily rows
    (kept for ever, so their sum is the all-time total)."""
    today = now.date()
    starts = {days: period_start(today, days) for days in (1, 7, 30)}
    rows: dict[str, list] = defaultdict(list)
    for quote, at, pnl, volume in db.session.execute(ACCOUNT_DAILY, {"account": account}):
        rows[quote].append((at, pnl, volume))
    figures, series = {}, {}
    for quote, days in sorted(rows.items()):
        f = Figures()
        for at, pnl, volume in days:
            f.all += pnl
            f.volume_all += volume
            if at >= starts[30]:
                f.d30 += pnl
                f.volume_d30 += volume
            if at >= starts[7]:
                f.d7 += pnl
                f.volume_d7 += volume
            if at >= starts[1]:
                f.today += pnl
                f.volume_today += volume
        figures[quote] = f
        series[quote] = _cumulate(days, f.all, f.volume_all)
    return figures, series


def account_figures(account: str, now: datetime) -> dict[str, Figures]:
    return account_overview(account, now)[0]


@dataclass(frozen=True)
class Ranked:
    bot_id: str
    name: str
    quote: str
    pnl: float
    visible: bool


def best_and_worst(account: str, now: datetime, *, archived_visible: bool,
                   count: int = 3) -> tuple[list[Ranked], list[Ranked]]:
    """Bots of the account by their PnL over the last 30 days. Archived bots count (their
    results were the account's), linked only for whom may open them (admins)."""
    rows = db.session.execute(text(f"""
        SELECT b.id, b.name, {QUOTE}, sum(p.global_pnl) AS pnl, b.archived_at IS NULL
        FROM bots b JOIN performance_points p ON p.bot_id = b.id
        WHERE b.account_identifier = :account AND p.resolution = 2 AND p.at >= :since
        GROUP BY b.id, b.name, 3 ORDER BY pnl DESC, b.name
    """), {"account": account, "since": period_start(now.date(), 30)}).all()  # noqa: S608
    ranked = [Ranked(r[0], r[1], r[2], r[3], r[4] or archived_visible) for r in rows]
    best = [r for r in ranked[:count] if r.pnl > 0]
    worst = [r for r in reversed(ranked[-count:]) if r.pnl < 0 and r not in best]
    return best, worst


def account_exists(account: str) -> bool:
    return db.session.scalar(text(
        "SELECT EXISTS (SELECT 1 FROM bots WHERE account_identifier = :account)"),
        {"account": account})


def recent_events(account: str, *, archived_visible: bool, limit: int = 10) -> list:
    """The account's latest events: the latest few of each bot (an index walk per bot), so
    the cost follows the account's bots, not every event ever written (append only)."""
    return db.session.execute(text("""
        SELECT e.occurred_at, e.action, e.actor, e.from_status, e.to_status, b.id, b.name
        FROM bots b CROSS JOIN LATERAL (
            SELECT occurred_at, id, action, actor, from_status, to_status FROM bot_events
            WHERE bot_id = b.id ORDER BY occurred_at DESC, id DESC LIMIT :limit) e
        WHERE b.account_identifier = :account AND (:archived OR b.archived_at IS NULL)
        ORDER BY e.occurred_at DESC, e.id DESC LIMIT :limit
    """), {"account": account, "archived": archived_visible, "limit": limit}).all()


# ------------------------------------------------------------------------------ statements
STATEMENT_COLUMNS = ("date", "account", "bot_id", "bot_name", "controller", "quote",
                     "realized_pnl", "unrealized_pnl_change", "global_pnl", "volume")


def statement_rows(*, account: str | None = None, bot: Bot | None = None,
                   first: date, last: date) -> list[dict]:
    """Daily rows per bot and controller for the days first..last (UTC), oldest first."""
    where = "b.account_identifier = :account" if bot is None else "b.id = :bot_id"
    rows = db.session.execute(text(f"""
        SELECT p.at, b.account_identifier, b.id, b.name, p.controller, {QUOTE} AS quote,
               p.realized, p.unrealized, p.global_pnl, p.volume
        FROM bots b JOIN performance_points p ON p.bot_id = b.id
        WHERE {where} AND p.resolution = 2 AND p.at >= :first AND p.at < :after
        ORDER BY p.at, b.name, b.id, p.controller
    """), {"account": account, "bot_id": bot.id if bot else None,  # noqa: S608 - constant
           "first": datetime.combine(first, datetime.min.time()),
           "after": datetime.combine(last + timedelta(days=1), datetime.min.time())})
    return [dict(zip(STATEMENT_COLUMNS, (r[0].date(), *r[1:]), strict=True)) for r in rows]


def _safe_cell(value):
    """Spreadsheets run cells that start with = + - @ as formulas: text gets a leading '.
    (Controller names come from Hummingbot: untrusted.)"""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def statement_csv(rows: list[dict]) -> str:
    """The statement as CSV: a header, then the rows as statement_rows gives them."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(STATEMENT_COLUMNS)
    for row in rows:
        writer.writerow([
            round(v, 8) if isinstance(v, float)
            else v.isoformat() if isinstance(v, date) else _safe_cell(v)
            for v in row.values()])
    return out.getvalue()
