"""Executing batch items: any number of workers in any number of processes, PostgreSQL the only
coordinator.

An item goes pending -> sending -> done | failed (or skipped when its bot no longer fits).
A worker claims a pending item with FOR UPDATE SKIP LOCKED, takes a session advisory lock on
it from a connection of its own, and commits `sending` before the one lifecycle call. The
lock lives exactly as long as the worker's connection: an item that is `sending` while nobody
holds its lock belonged to a process that died mid-call. Such an item is never sent again:
reconcile settles its bot from what Hummingbot reports and the item ends `interrupted`.

Items are grouped by their bot's server for concurrency: a process has at most
BATCH_WORKERS_PER_SERVER items of one server in flight (slots.py), so one slow server
cannot hold every worker while another server's items wait. An item whose server's breaker
is open is skipped without a call, with the reason.
"""

from __future__ import annotations

import logging
import threading

from flask import Flask
from sqlalchemy import Connection, exists, select, text, update

from .. import lifecycle
from ..fleet import fleet
from ..gateway import link_for
from ..models import Batch, BatchItem, Bot, db
from ..registry import (
    StateError,
    archive_bot,
    event_context,
    record_event,
    restore_bot,
    utcnow,
)
from ..slots import Slots
from ..status import live_word, match_live
from ..validation import ValidationError
from .service import (
    ALREADY_RUNNING,
    ALREADY_STOPPED,
    OPEN_STATES,
    STATUS_ACTIONS,
    overruled,
    server_down,
    server_reason,
    skip_reason,
)

log = logging.getLogger(__name__)

ITEM_LOCK_CLASS = 0x62617463  # "batc": advisory locks (class, item id) mark items in flight


def _try_lock(conn: Connection, item_id: int) -> bool:
    return bool(conn.execute(text("SELECT pg_try_advisory_lock(:c, :i)"),
                             {"c": ITEM_LOCK_CLASS, "i": item_id}).scalar())


def _unlock(conn: Connection, item_id: int) -> None:
    conn.execute(text("SELECT pg_advisory_unlock(:c, :i)"), {"c": ITEM_LOCK_CLASS, "i": item_id})


def lock_connection() -> Connection:
    """A connection for one worker's item locks, outside any transaction."""
    return db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")


def claim(conn: Connection, slots: Slots | None = None) -> tuple[BatchItem, int] | None:
    """The oldest pending item nobody else is claiming whose server has a free slot, now
    `sending` and locked by `conn`; with its bot's server id (the slot taken)."""
    slots = slots or Slots(1 << 30)
    skip = slots.full()
    while True:  # at most once per server: each pass skips one more server at its cap
        query = (select(BatchItem, Bot.server_id).join(Bot, Bot.id == BatchItem.bot_id)
                 .where(BatchItem.state == "pending").order_by(BatchItem.id).limit(1)
                 .with_for_update(of=BatchItem, skip_locked=True))
        if skip:
            query = query.where(Bot.server_id.not_in(skip))
        row = db.session.execute(query).first()
        if row is None:
            db.session.rollback()
            return None
        item, server_id = row
        if slots.take(server_id):
            break
        db.session.rollback()  # another thread filled that server's slots meanwhile
        skip.append(server_id)
    if not _try_lock(conn, item.id):  # a settling pass is looking at it: leave it
        db.session.rollback()
        slots.give(server_id)
        return None
    item.state, item.started_at = "sending", utcnow()
    db.session.commit()  # the intent: from here on this item is never sent again
    return item, server_id


def _send(batch: Batch, bot: Bot) -> tuple[str, str | None]:
    """The one lifecycle call for `bot`; returns (state, note)."""
    actor, action = batch.created_by, batch.action
    if action == "deploy":
        settings = lifecycle.parse_deploy_settings(lifecycle.deploy_form_defaults(bot))
        bot = lifecycle.deploy(bot.id, settings, actor)
        if bot.status == "deploy_failed":
            return "failed", bot.last_error
        if bot.status == "deploying":
            return "done", "sent; outcome not known yet: reconcile settles it"
        return "done", f"running as {bot.instance_name}"
    if action == "start":
        lifecycle.start(bot.id, actor)
        return "done", "started"
    if action == "stop":
        lifecycle.stop(bot.id, actor, cancel_orders=batch.cancel_orders)
        return "done", "stopped"
    if action == "stop-archive":
        bot = lifecycle.stop_and_archive(bot.id, actor, cancel_orders=batch.cancel_orders)
        return "done", ("archive started" if bot.status == "stopping" else "stopped")
    if action == "archive":
        archive_bot(bot, actor)
        return "done", "archived"
    restore_bot(bot, actor)
    return "done", "restored"


def _link(bot: Bot):
    """The link to the bot's server, without a statement when this process has built it."""
    try:
        return fleet().known_link(bot.server_id)
    except LookupError:
        return link_for(bot)


def _server_check(batch: Batch, bot: Bot):
    """(link, (note, history reason) or None) for the bot's server. A server disabled since
    the batch was confirmed is asked nothing, as the preview would now say. A call to a server
    whose breaker is open would fail at once: skipped, nothing sent. Archive looks at the
    server's shared status first, as the preview did (a bot still there is not archived)."""
    if batch.action not in STATUS_ACTIONS:
        return None, None
    enabled = fleet().is_enabled(bot.server_id)  # reads the servers table: the link is current
    link = _link(bot)
    if not enabled and (batch.action != "archive" or bot.instance_name):
        note, public = server_down(link.name, "disabled")
        return link, (note + " since the batch was confirmed; nothing was sent", public)
    if batch.action == "archive":
        snapshot = link.feed.snapshot(record=False)
        return None, server_reason("archive", bot, snapshot, {bot.server_id: link.name})
    if link.breaker.state != "open":
        return link, None
    note, public = server_down(link.name, "unreachable")
    return link, (note + " (its circuit breaker is open); nothing was sent", public)


def execute(item: BatchItem) -> None:
    """Run one claimed item and record how it ended (in the item and the bot's history)."""
    item_id, batch_id, bot_id = item.id, item.batch_id, item.bot_id
    batch = db.session.get(Batch, batch_id)
    bot = db.session.get(Bot, bot_id)
    reason = public = skip_reason(batch.action, bot)  # the bot may have changed meanwhile
    # Pending though the definition says it is done already: the preview saw Hummingbot
    # report otherwise. Does it still?
    if reason in (ALREADY_STOPPED, ALREADY_RUNNING) and overruled(
            reason, bot, _link(bot).feed.snapshot(record=False)):
        reason = public = None
    link = None
    if reason is None:
        link, against = _server_check(batch, bot)
        if against is not None:
            reason, public = against
    with event_context(batch_id=batch_id):
        if reason is not None:
            state, note = "skipped", reason
            record_event(bot, "batch_skipped", batch.created_by, from_status=bot.status,
                         to_status=bot.status,
                         details={"batch_action": batch.action, "reason": public})
            db.session.commit()
        else:
            try:
                state, note = _send(batch, bot)
            except (lifecycle.LifecycleError, StateError) as exc:
                db.session.rollback()
                state, note = "failed", str(exc)
            except ValidationError as exc:  # saved deploy settings no longer valid
                db.session.rollback()
                state, note = "failed", "its saved deploy settings are not valid: " + \
                    "; ".join(f"{k} {v}" for k, v in exc.errors.items())
            except Exception as exc:  # recorded on the item; the worker carries on
                db.session.rollback()
                log.exception("batch item %s failed", item_id)
                state, note = "failed", f"unexpected error ({exc.__class__.__name__})"
            if state == "failed" and link is not None:
                note = f"server {link.name}: {note}"  # the batch pages are for admins only
    _finish(item_id, batch_id, state, note)


def _finish(item_id: int, batch_id: str, state: str, note: str | None) -> None:
    db.session.execute(update(BatchItem).where(BatchItem.id == item_id).values(
        state=state, note=(note or "")[:500] or None, finished_at=utcnow()))
    db.session.commit()
    close_if_done(batch_id)


def close_if_done(batch_id: str) -> None:
    """Mark the batch finished once no item is open. Called after the item's own commit, in
    a statement of its own: whichever worker commits the last item then sees every other
    item's commit (checked inside one transaction, two workers finishing together could
    each see the other's item still open, and nobody would close the batch)."""
    still_open = exists().where(BatchItem.batch_id == batch_id,
                                BatchItem.state.in_(OPEN_STATES))
    db.session.execute(update(Batch).where(Batch.id == batch_id, Batch.finished_at.is_(None),
                                           ~still_open).values(finished_at=utcnow()))
    db.session.commit()


def settle_interrupted(conn: Connection) -> int:
    """Items left `sending` by a process that died: never re-sent; their bots reconciled.
    Returns how many were settled."""
    settled = 0
    candidates = db.session.scalars(
        select(BatchItem.id).where(BatchItem.state == "sending").order_by(BatchItem.id)).all()
    db.session.rollback()
    for item_id in candidates:
        if not _try_lock(conn, item_id):
            continue  # its worker is alive and still sending
        try:
            settled += _settle_one(item_id)
        finally:
            _unlock(conn, item_id)
    return settled


def _settle_one(item_id: int) -> int:
    item = db.session.get(BatchItem, item_id)
    if item is None or item.state != "sending":
        db.session.rollback()
        return 0  # it finished between the query and the lock
    bot_id, batch_id = item.bot_id, item.batch_id
    db.session.rollback()
    report = lifecycle.reconcile(actor="reconcile", only=bot_id)
    if not report.ran:
        return 0  # Hummingbot unreachable or another reconcile running: next pass
    bot = db.session.get(Bot, bot_id)
    snapshot = link_for(bot).feed.snapshot()
    item = db.session.scalars(select(BatchItem).where(BatchItem.id == item_id)
                              .with_for_update()).one()
    if item.state != "sending":
        db.session.rollback()
        return 0
    bot = db.session.get(Bot, bot_id)
    live = match_live(bot, snapshot.bots) if snapshot.reachable else None
    seen = live_word(live) if live is not None else "absent"
    note = (f"the process sending it stopped; nothing was sent again. After reconcile the "
            f"definition says {bot.status}; Hummingbot reports {seen}.")
    item.state, item.note, item.finished_at = "interrupted", note, utcnow()
    with event_context(batch_id=batch_id):
        record_event(bot, "batch_interrupted", "reconcile", from_status=bot.status,
                     to_status=bot.status, details={"note": note})
    db.session.commit()
    close_if_done(batch_id)
    return 1


# ------------------------------------------------------------------------------- workers
def work_once(app: Flask, conn: Connection, slots: Slots | None = None) -> bool:
    """Claim and run one item; False when there was none this worker may take."""
    slots = slots or Slots(1 << 30)
    with app.app_context():
        claimed = claim(conn, slots)
        if claimed is None:
            return False
        item, server_id = claimed
        try:
            execute(item)
        finally:
            _unlock(conn, item.id)
            slots.give(server_id)
    return True


def per_server(app: Flask) -> Slots:
    return Slots(app.config.get("BATCH_WORKERS_PER_SERVER", 3))


def run_pending(app: Flask, workers: int = 4, slots: Slots | None = None) -> None:
    """Run every pending item with `workers` threads, settle interrupted ones, and return
    (tests, the CLI and the benchmark use it; servers run `start_workers`). A thread that
    finds only items of servers at their cap ends; the threads holding those slots go on."""
    slots = slots or per_server(app)

    def loop() -> None:
        with app.app_context():
            conn = lock_connection()
        try:
            while work_once(app, conn, slots):
                pass
        finally:
            conn.close()

    threads = [threading.Thread(target=loop, name=f"batch-{n}") for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with app.app_context():
        conn = lock_connection()
        try:
            settle_interrupted(conn)
        finally:
            conn.close()


class Workers:
    """BATCH_WORKERS daemon threads in this process; `wake()` after a batch is created."""

    def __init__(self, app: Flask):
        self.app = app
        self.count = app.config["BATCH_WORKERS"]
        self.poll = app.config["BATCH_POLL_SECONDS"]
        self.slots = per_server(app)
        self.event = threading.Event()

    def start(self) -> None:
        for n in range(self.count):
            threading.Thread(target=self._loop, args=(n == 0,), name=f"batch-{n}",
                             daemon=True).start()

    def wake(self) -> None:
        self.event.set()

    def _loop(self, settles: bool) -> None:
        conn: Connection | None = None
        while True:
            try:
                if conn is None:
                    with self.app.app_context():
                        conn = lock_connection()
                if settles:
                    with self.app.app_context():
                        settle_interrupted(conn)
                while work_once(self.app, conn, self.slots):
                    pass
            except Exception:  # keep the worker alive whatever one pass hit
                log.exception("batch worker pass failed")
                conn = _reset(conn)
            # One worker polls for items other processes created; the rest wait to be woken
            # (by it, or by a batch created here), so an idle process costs one query a poll.
            if settles:
                self.event.wait(self.poll)
                self.event.clear()
                if self._has_pending():
                    self.event.set()
            else:
                self.event.wait(self.poll * 30)
                self.event.clear()

    def _has_pending(self) -> bool:
        with self.app.app_context():
            found = db.session.scalar(select(exists().where(BatchItem.state == "pending")))
            db.session.rollback()
            return bool(found)


def _reset(conn: Connection | None) -> None:
    """After an error the lock connection may be broken: drop it (its locks go with it)."""
    if conn is not None:
        try:
            conn.close()
        except Exception:  # already broken: nothing to release
            log.debug("closing a broken lock connection failed", exc_info=True)


def workers(app: Flask) -> Workers | None:
    return app.extensions.get("batch_workers")


def init_app(app: Flask) -> None:
    """Start BATCH_WORKERS threads at the first request, as the periodic reconcile is started
    (CLI commands must not spawn threads)."""
    if app.config.get("BATCH_WORKERS", 0) <= 0:
        return
    pool = Workers(app)
    app.extensions["batch_workers"] = pool
    started = threading.Event()
    lock = threading.Lock()

    @app.before_request
    def start_batch_workers():
        if started.is_set():
            return
        with lock:
            if not started.is_set():
                pool.start()
                started.set()
