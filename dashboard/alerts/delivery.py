"""Delivering the outbox: any number of workers in any number of processes, PostgreSQL the only
coordinator.

A delivery goes pending -> sending -> delivered, or back to pending with a later
`next_attempt_at` (exponential backoff with jitter), or dead with the reason after
ALERT_MAX_ATTEMPTS. A worker claims one row with FOR UPDATE SKIP LOCKED and commits `sending`
with a lease (`locked_until`) before it sends, outside any transaction; a worker that dies
mid-send (SIGKILL) leaves a `sending` row whose lease runs out, and the next claim takes it
again. So a message is delivered at least once: a receiver drops a duplicate by its
idempotency key (header and payload). A worker finishes a row only if it still holds the
claim it made (same attempt number), so a late worker never overwrites a newer claim.

Each claim is one message: a slow destination holds one worker for at most its timeout, and
never a page (pages only insert rows). A pool of workers (one per process) has at most all its
workers but one sending to one destination (slots.py): a claim passes over the messages
of a destination at its cap, so a destination that hangs until the timeout never holds every
worker while other destinations' messages wait.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from datetime import timedelta

from flask import Flask, current_app
from sqlalchemy import text

from ..disclosure import client_alert_payload
from ..models import db
from ..registry import utcnow
from ..sealed import UnreadableSecret
from ..slots import Slots
from . import policy, senders
from .models import AlertDestination

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 3600.0

CLAIM = text("""
    UPDATE alert_deliveries SET status = 'sending', attempts = attempts + 1,
                                locked_until = :lease_until
    WHERE id = (
        SELECT id FROM alert_deliveries
        WHERE status IN ('pending', 'sending') AND next_attempt_at <= :now
          AND (status = 'pending' OR locked_until < :now)
          AND destination_id <> ALL(:skip)
        ORDER BY next_attempt_at, id
        LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING id, destination_id, event, CAST(idempotency_key AS text), payload, attempts
""")

DELIVERED = text("""
    UPDATE alert_deliveries SET status = 'delivered', delivered_at = :now, locked_until = NULL,
                                last_error = NULL
    WHERE id = :id AND status = 'sending' AND attempts = :attempts
""")

FAILED = text("""
    UPDATE alert_deliveries SET status = :status, next_attempt_at = :next, locked_until = NULL,
                                last_error = :error
    WHERE id = :id AND status = 'sending' AND attempts = :attempts
""")


def backoff(attempts: int, base: float) -> float:
    """Seconds before attempt `attempts + 1`: base, 2 base, 4 base... capped, with up to a
    quarter more of jitter so retries of a burst do not arrive together."""
    delay = min(base * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS)
    return delay * (1 + random.random() / 4)  # noqa: S311 - jitter, not a secret


def claim(slots: Slots | None = None) -> dict | None:
    """The next due delivery whose destination has a free slot, now `sending` under a lease,
    committed, its slot taken (the caller gives it back); None when none is due."""
    lease = current_app.config.get("ALERT_LEASE_SECONDS", 60.0)
    while True:  # again only when another thread filled that destination's slots meanwhile
        now = utcnow()
        skip = slots.full() if slots is not None else []
        row = db.session.execute(CLAIM, {"now": now, "skip": skip,
                                         "lease_until": now + timedelta(seconds=lease)}).first()
        if row is None:
            db.session.rollback()
            return None
        if slots is None or slots.take(row[1]):
            break
        db.session.rollback()  # the claim is undone: the row stays as it was
    db.session.commit()
    return dict(zip(("id", "destination_id", "event", "key", "payload", "attempts"), row,
                    strict=True))


def deliver(claimed: dict) -> str:
    """Send one claimed delivery and record how it went; returns the new status."""
    config = current_app.config
    error: str | None = None
    permanent = False
    try:
        destination = db.session.get(AlertDestination, claimed["destination_id"])
        payload = claimed["payload"]
        if destination is not None:
            db.session.expunge(destination)  # loaded, decrypted, kept past the rollback
            if destination.account_identifier is not None:  # a client's: what its pages say
                payload = client_alert_payload(payload)
        db.session.rollback()  # no transaction stays open during the send
        if destination is None or not destination.enabled:
            error, permanent = "the destination is disabled", True
        else:
            senders.send(destination, payload, claimed["key"], config)
    except policy.PolicyError as exc:
        error, permanent = f"refused by the outbound policy: {exc}", True
    except UnreadableSecret:
        error, permanent = "its secret cannot be decrypted (ENCRYPTION_KEYS)", True
    except senders.SendError as exc:
        error = str(exc)
    except Exception as exc:  # recorded on the row; the worker carries on
        db.session.rollback()
        log.exception("alert delivery %s failed unexpectedly", claimed["id"])
        error = f"unexpected error ({exc.__class__.__name__})"
    now = utcnow()
    if error is None:
        db.session.execute(DELIVERED, {"id": claimed["id"], "attempts": claimed["attempts"],
                                       "now": now})
        status = "delivered"
    else:
        dead = permanent or claimed["attempts"] >= config.get("ALERT_MAX_ATTEMPTS", 8)
        status = "dead" if dead else "pending"
        delay = backoff(claimed["attempts"], config.get("ALERT_BACKOFF_SECONDS", 5.0))
        db.session.execute(FAILED, {
            "id": claimed["id"], "attempts": claimed["attempts"], "status": status,
            "next": now + timedelta(seconds=delay), "error": error[:500]})
        log.warning("alert delivery %s to destination %s, attempt %s: %s%s", claimed["id"],
                    claimed["destination_id"], claimed["attempts"], error,
                    " (dead)" if dead else "")
    db.session.commit()
    return status


def work_once(app: Flask, slots: Slots | None = None) -> bool:
    """Claim and send one delivery; False when none was due (or none with a free slot)."""
    with app.app_context():
        claimed = claim(slots)
        if claimed is None:
            return False
        try:
            deliver(claimed)
        finally:
            if slots is not None:
                slots.give(claimed["destination_id"])
    return True


def run_pending(app: Flask, workers: int = 2) -> None:
    """Send every due delivery with `workers` threads and return (tests, the CLI). A thread
    that finds only messages of destinations at their cap ends; the threads sending to those
    destinations go on with them."""
    slots = Slots.for_workers(workers)

    def loop() -> None:
        while work_once(app, slots):
            pass

    threads = [threading.Thread(target=loop, name=f"alerts-{n}") for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class Workers:
    """ALERT_WORKERS daemon threads in this process; `wake()` after deliveries are queued."""

    def __init__(self, app: Flask):
        self.app = app
        self.count = app.config["ALERT_WORKERS"]
        self.poll = app.config["ALERT_POLL_SECONDS"]
        self.event = threading.Event()
        self.slots = Slots.for_workers(self.count)

    def start(self) -> None:
        for n in range(self.count):
            threading.Thread(target=self._loop, args=(n == 0,), name=f"alerts-{n}",
                             daemon=True).start()

    def wake(self) -> None:
        self.event.set()

    def _loop(self, leads: bool) -> None:
        while True:
            try:
                while work_once(self.app, self.slots):
                    if leads:
                        self.event.set()  # more may be due: the others help
            except Exception:  # keep the worker alive whatever one pass hit
                log.exception("alert worker pass failed")
            # One worker polls for rows that became due (retries, other processes' alerts);
            # the rest wait to be woken, so an idle process costs one query a poll.
            if leads:
                time.sleep(self.poll)
            else:
                self.event.wait(self.poll * 30)
                self.event.clear()


def run_forever(app: Flask, threads: int) -> None:
    """A delivery process of its own (`flask alerts work`): `threads` workers until killed."""
    pool = Workers(app)
    pool.count = threads
    pool.slots = Slots.for_workers(threads)
    pool.start()
    threading.Event().wait()


def wake(app: Flask) -> None:
    pool = app.extensions.get("alert_workers")
    if pool is not None:
        pool.wake()


def start_periodic_evaluation(app: Flask) -> None:
    """Evaluate conditions every ALERT_EVALUATE_SECONDS; fleet-wide at most once a period."""
    from ..gateway import _every
    from .conditions import evaluate

    _every(app, "alerts", app.config.get("ALERT_EVALUATE_SECONDS", 0), evaluate)


def init_app(app: Flask) -> None:
    """Start ALERT_WORKERS threads and the evaluation at the first request, as the batch
    executor is started (CLI commands must not spawn threads)."""
    pool = Workers(app) if app.config.get("ALERT_WORKERS", 0) > 0 else None
    if pool is not None:
        app.extensions["alert_workers"] = pool
    started = threading.Event()
    lock = threading.Lock()

    @app.before_request
    def start_alerts():
        if started.is_set():
            return
        with lock:
            if not started.is_set():
                if pool is not None:
                    pool.start()
                start_periodic_evaluation(app)
                started.set()
