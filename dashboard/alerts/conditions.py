"""Alert conditions, evaluated from what PostgreSQL already holds: each bot's badge and latest
error line (written from the status snapshot, gateway.py), the performance history (drawdown)
and the alerts' clock (since when Hummingbot fails). No call to Hummingbot.

One pass, fleet-wide, one process at a time (an advisory lock, as history sampling), at most
once per ALERT_EVALUATE_SECONDS, in a fixed number of statements whatever the fleet size:

1. `alert_now`: every (subject, condition) that holds now, in one temporary table;
2. open a pending alert for each one not yet open; keep open alerts' detail current;
3. drop pending alerts whose condition went away before it fired (a flap: nobody is told);
4. resolve firing alerts whose condition went away, and queue a `resolved` message to every
   destination that was told it fired, in the same statement;
5. promote pending alerts that held for the shortest hold of a rule routing them;
6. queue `fired` messages (each route once its own hold has passed) and `repeat` messages
   (each route's repeat interval), in the same statement as `last_notified_at`.

The whole pass is one transaction: an alert's transition and its outbox rows commit together
or not at all. Mutes (a bot, an account, or everything, until a time) silence step 6: no
`fired` or `repeat` message while one covers the alert; a fired message held back goes out
when the mute ends if the condition still holds. Step 4 is not muted: a `resolved` message
goes only to destinations that were told the alert fired, and closes what they were told (a
mute is there to stop new noise, not to leave someone believing a bot is still down). An
alert that began and ended inside a mute told nobody, so it sends nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import text

from ..models import db
from ..registry import utcnow
from ..status import REPORTING

ALERT_LOCK_KEY = 0x616C7274  # "alrt": one evaluator at a time across the fleet
# Badges that are conditions of their own, under the same code.
BADGE_CONDITIONS = ("missing", "crashed", "deploy_failed", "stuck", "archived_running")
DETAIL_CHARS = 500  # an error line is kept this long in an alert (the page shows it escaped)
DEFAULT_DRAWDOWN_WINDOW_MINUTES = 60


@dataclass
class EvaluationReport:
    ran: bool
    reason: str = ""
    opened: int = 0
    dropped: int = 0
    fired: int = 0
    resolved: int = 0
    queued: int = 0  # outbox rows written (fired, repeat and resolved messages)


# The drawdown of a bot over a rule's window: how far its cumulative PnL (the sum of every
# global_pnl delta in the history) fell from its highest point in the window to now. Summing
# the deltas from the newest sample backwards gives, at each sample, "now minus just before
# it"; the most negative of those within the window is the fall. Per bot and rule, one range
# of the samples' primary key, read newest first (already in the window's order: no sort of
# the fleet's samples, which cost seconds at 10,000 bots).
DRAWDOWN = """
    dd_rules AS (
        SELECT r.id, r.account_identifier,
               CAST(r.params ->> 'drawdown_amount' AS float8) AS amount,
               coalesce(CAST(r.params ->> 'drawdown_window_minutes' AS int),
                        :default_window) AS window_minutes
        FROM alert_rules r
        WHERE r.enabled AND 'drawdown' = ANY(r.conditions)
          AND jsonb_typeof(r.params -> 'drawdown_amount') = 'number'
    ), falls AS (
        SELECT DISTINCT ON (b.id) b.id, b.account_identifier,
               format('PnL fell %s in the last %s min (threshold %s)',
                      round(CAST(-w.change AS numeric), 2), r.window_minutes, r.amount) AS detail
        FROM bots b
        JOIN dd_rules r ON r.account_identifier IS NULL
                        OR r.account_identifier = b.account_identifier
        CROSS JOIN LATERAL (
            SELECT min(s.change) AS change FROM (
                -- Rows of one sample (one per controller) are peers: each gets their sum.
                SELECT sum(p.global_pnl) OVER (ORDER BY p.at DESC) AS change
                FROM performance_points p
                WHERE p.bot_id = b.id AND p.resolution = 0
                  AND p.at > CAST(:now AS timestamp) - make_interval(mins => r.window_minutes)
            ) s) w
        WHERE :drawdown_due AND b.archived_at IS NULL AND -w.change >= r.amount
        ORDER BY b.id, -w.change - r.amount DESC
    ), drawdowns AS (
        SELECT id, account_identifier, detail FROM falls
        UNION ALL
        -- Inputs unchanged since it was computed: the open drawdown alerts still hold.
        SELECT a.bot_id, a.account_identifier, a.detail FROM alerts a
        WHERE NOT :drawdown_due AND a.condition = 'drawdown' AND a.state <> 'resolved'
    )"""

# Everything that holds now. `since` is when it began where that is known (Hummingbot's
# failure), else now. Detail is short text for the message; Hummingbot's text stays text.
ALERT_NOW = text("""
    CREATE TEMPORARY TABLE alert_now ON COMMIT DROP AS
    WITH """ + DRAWDOWN + """, unreachable AS (
        SELECT coalesce(min(CAST(r.params ->> 'unreachable_minutes' AS int)),
                        :unreachable_minutes) AS minutes
        FROM alert_rules r
        WHERE r.enabled AND 'hummingbot_unreachable' = ANY(r.conditions)
          AND jsonb_typeof(r.params -> 'unreachable_minutes') = 'number'
    )
    SELECT b.id AS bot_id, b.account_identifier, b.display_status AS condition,
           CAST(:now AS timestamp) AS since,
           CASE WHEN b.display_status = 'deploy_failed' THEN left(b.last_error, :detail_chars)
           END AS detail
    FROM bots b WHERE b.display_status = ANY(:badge_conditions)
    UNION ALL
    SELECT b.id, b.account_identifier, 'error_lines', CAST(:now AS timestamp),
           left(b.error_log, :detail_chars)
    FROM bots b WHERE b.error_log IS NOT NULL AND b.display_status = ANY(:reporting)
    UNION ALL
    SELECT d.id, d.account_identifier, 'drawdown', CAST(:now AS timestamp), d.detail
    FROM drawdowns d
    UNION ALL
    SELECT NULL, NULL, 'hummingbot_unreachable', f.since,
           CASE f.kind WHEN 'auth' THEN 'Hummingbot refuses our credentials'
                WHEN 'timeout' THEN 'Hummingbot does not answer in time'
                WHEN 'protocol' THEN 'Hummingbot answers with errors'
                ELSE 'Hummingbot is unreachable' END
    FROM (SELECT since, kind FROM (
              SELECT hummingbot_failing_since AS since, hummingbot_error_kind AS kind
              FROM alert_clock
              UNION ALL
              SELECT failing_since, failing_kind FROM hummingbot_servers WHERE enabled
          ) failing WHERE since IS NOT NULL ORDER BY since LIMIT 1) f
    CROSS JOIN unreachable u
    WHERE f.since <= CAST(:now AS timestamp) - make_interval(mins => u.minutes)
""")  # noqa: S608 - constant SQL pieces; values are bound

# The same subject: fleet-wide alerts have no bot (coalesce keeps it a hash-joinable equality).
SAME = "coalesce(n.bot_id, '') = coalesce(a.bot_id, '') AND n.condition = a.condition"

OPEN = text("""
    INSERT INTO alerts (bot_id, account_identifier, condition, state, since, detail)
    SELECT n.bot_id, n.account_identifier, n.condition, 'pending', n.since, n.detail
    FROM alert_now n
    ON CONFLICT (bot_id, condition) WHERE state <> 'resolved' DO NOTHING
""")

REFRESH = text(f"""
    UPDATE alerts a SET detail = n.detail, account_identifier = n.account_identifier
    FROM alert_now n
    WHERE a.state <> 'resolved' AND {SAME}
      AND (a.detail IS DISTINCT FROM n.detail
           OR a.account_identifier IS DISTINCT FROM n.account_identifier)
""")  # noqa: S608 - constant SQL pieces

DROP = text(f"""
    DELETE FROM alerts a
    WHERE a.state = 'pending' AND NOT EXISTS (SELECT 1 FROM alert_now n WHERE {SAME})
""")  # noqa: S608 - constant SQL pieces

# A mute covering alert `a` now: its bot, its account, or everything.
MUTED = """EXISTS (SELECT 1 FROM alert_mutes m WHERE m.until > CAST(:now AS timestamp)
    AND (m.bot_id = a.bot_id
         OR (m.bot_id IS NULL AND m.account_identifier = a.account_identifier)
         OR (m.bot_id IS NULL AND m.account_identifier IS NULL)))"""

# Rules and destinations routing alert `a`: the rule names its condition and covers its
# account (NULL: all); the destination serves it (the operator's, or the account's own: a
# client's destination never hears of another account, whatever a rule says).
ROUTES = """alert_rules r
    JOIN alert_destinations d ON d.id = r.destination_id AND d.enabled
     AND (d.account_identifier IS NULL OR d.account_identifier = a.account_identifier)
    WHERE r.enabled AND a.condition = ANY(r.conditions)
      AND (r.account_identifier IS NULL OR r.account_identifier = a.account_identifier)"""

# What a receiver gets (the sender adds the idempotency key). Detail is untrusted text.
PAYLOAD = """jsonb_build_object(
    'event', {event}, 'alert_id', a.id, 'condition', a.condition, 'state', a.state,
    'bot_id', a.bot_id, 'bot_name', b.name, 'account', a.account_identifier,
    'since', a.since, 'fired_at', a.fired_at, 'resolved_at', a.resolved_at,
    'detail', a.detail)"""

RESOLVE = text("""
    WITH a AS (
        UPDATE alerts a SET state = 'resolved', resolved_at = :now
        WHERE a.state = 'firing' AND NOT EXISTS (SELECT 1 FROM alert_now n WHERE """ + SAME + """)
        RETURNING a.*
    ), told AS (
        SELECT DISTINCT x.alert_id, x.destination_id
        FROM alert_deliveries x JOIN a ON x.alert_id = a.id
        WHERE x.event IN ('fired', 'repeat')
    ), queued AS (
        INSERT INTO alert_deliveries (alert_id, destination_id, event, payload,
                                      next_attempt_at, created_at)
        SELECT a.id, t.destination_id, 'resolved', """ + PAYLOAD.format(event="'resolved'") + """,
               :now, :now
        FROM a JOIN told t ON t.alert_id = a.id
        JOIN alert_destinations d ON d.id = t.destination_id AND d.enabled
        LEFT JOIN bots b ON b.id = a.bot_id
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM queued)
""")  # noqa: S608 - constant SQL pieces; values are bound

PROMOTE = text("""
    UPDATE alerts a SET state = 'firing', fired_at = :now
    WHERE a.state = 'pending'
      AND a.since + make_interval(secs => coalesce(
              (SELECT min(r.hold_seconds) FROM """ + ROUTES + """), 0)) <= :now
""")  # noqa: S608 - constant SQL pieces; values are bound

# Per (alert, destination): `fired` once the route's hold has passed and nothing was sent
# yet; `repeat` once its repeat interval has passed since the last message. Two rules to
# one destination send it one message.
NOTIFY = text("""
    WITH due AS (
        SELECT DISTINCT ON (a.id, r.destination_id) a.id AS alert_id, r.destination_id,
               CASE WHEN last.at IS NULL THEN 'fired' ELSE 'repeat' END AS event
        FROM alerts a
        CROSS JOIN LATERAL (SELECT r.* FROM """ + ROUTES + """) r
        CROSS JOIN LATERAL (
            SELECT max(x.created_at) AS at FROM alert_deliveries x
            WHERE x.alert_id = a.id AND x.destination_id = r.destination_id
              AND x.event IN ('fired', 'repeat')) last
        WHERE a.state = 'firing' AND NOT """ + MUTED + """
          AND CASE WHEN last.at IS NULL
                   THEN a.since + make_interval(secs => r.hold_seconds) <= :now
                   ELSE r.repeat_seconds > 0
                        AND last.at + make_interval(secs => r.repeat_seconds) <= :now END
        ORDER BY a.id, r.destination_id, event
    ), queued AS (
        INSERT INTO alert_deliveries (alert_id, destination_id, event, payload,
                                      next_attempt_at, created_at)
        SELECT a.id, due.destination_id, due.event, """ + PAYLOAD.format(event="due.event") + """,
               :now, :now
        FROM due JOIN alerts a ON a.id = due.alert_id LEFT JOIN bots b ON b.id = a.bot_id
        RETURNING alert_id
    ), noted AS (
        UPDATE alerts SET last_notified_at = :now
        WHERE id IN (SELECT alert_id FROM queued)
    )
    SELECT count(*) FROM queued
""")  # noqa: S608 - constant SQL pieces; values are bound

# The period is claimed fleet-wide; the drawdown is due when its inputs changed (a sample
# period was recorded, a rule was added, changed or deleted) or DRAWDOWN_AT_LEAST_SECONDS went
# by (the window slides even without new samples). RETURNING sees the new row: drawdown_at is
# :now exactly when it is due.
CLAIM_PERIOD = text("""
    WITH inputs AS (
        SELECT concat_ws('|', (SELECT sampled_at FROM performance_clock WHERE id = 1),
                         (SELECT max(updated_at) FROM alert_rules),
                         (SELECT count(*) FROM alert_rules)) AS fingerprint
    )
    UPDATE alert_clock c SET evaluated_at = :now,
        drawdown_at = CASE WHEN :force OR c.drawdown_at IS NULL
                                OR c.drawdown_at <= :drawdown_stale
                                OR c.drawdown_inputs IS DISTINCT FROM i.fingerprint
                           THEN CAST(:now AS timestamp) ELSE c.drawdown_at END,
        drawdown_inputs = i.fingerprint
    FROM inputs i
    WHERE c.id = 1 AND (c.evaluated_at IS NULL OR c.evaluated_at <= :due OR :force)
    RETURNING c.drawdown_at = CAST(:now AS timestamp)
""")
DRAWDOWN_AT_LEAST_SECONDS = 300


def take_alert_lock() -> bool:
    """The evaluator's lock, held until the caller's transaction ends."""
    return bool(db.session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"),
                                  {"key": ALERT_LOCK_KEY}))


def evaluate(now: datetime | None = None, *, force: bool = False) -> EvaluationReport:
    """One evaluation pass (see the module's docstring). `force`: even if another process
    evaluated less than a period ago, and the drawdown too (tests, the CLI)."""
    now = now or utcnow()
    if not take_alert_lock():
        db.session.rollback()
        return EvaluationReport(ran=False, reason="another process is evaluating")
    period = current_app.config.get("ALERT_EVALUATE_SECONDS", 30.0)
    drawdown_due = db.session.scalar(CLAIM_PERIOD, {
        "now": now, "due": now - timedelta(seconds=max(period, 0) * 0.9), "force": force,
        "drawdown_stale": now - timedelta(seconds=DRAWDOWN_AT_LEAST_SECONDS)})
    if drawdown_due is None:
        db.session.rollback()
        return EvaluationReport(ran=False, reason="evaluated less than a period ago")
    params = {"now": now}
    db.session.execute(ALERT_NOW, {
        **params, "drawdown_due": drawdown_due,
        "badge_conditions": list(BADGE_CONDITIONS), "reporting": list(REPORTING),
        "detail_chars": DETAIL_CHARS, "default_window": DEFAULT_DRAWDOWN_WINDOW_MINUTES,
        "unreachable_minutes": current_app.config.get("ALERT_UNREACHABLE_MINUTES", 5)})
    report = EvaluationReport(ran=True)
    report.opened = db.session.execute(OPEN).rowcount
    db.session.execute(REFRESH)
    report.dropped = db.session.execute(DROP).rowcount
    report.resolved, resolved_queued = db.session.execute(RESOLVE, params).one()
    report.fired = db.session.execute(PROMOTE, params).rowcount
    report.queued = resolved_queued + db.session.scalar(NOTIFY, params)
    # ON COMMIT DROP would do, but a savepoint's release (the tests) is no commit.
    db.session.execute(text("DROP TABLE alert_now"))
    db.session.commit()
    if report.queued:
        from .delivery import wake

        wake(current_app)
    return report
