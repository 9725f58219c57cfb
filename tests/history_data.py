"""Performance history for tests and screenshots: real samples, written by the sampler from
the simulator's real status answers at chosen times."""

from __future__ import annotations

from datetime import datetime, timedelta

from dashboard.gateway import hummingbot
from dashboard.history.sampling import record_samples
from dashboard.models import db
from dashboard.registry import utcnow

BOTS = (("sharp-a", "client_sharp", ["c1", "c2"]), ("sharp-b", "client_sharp", ["c1"]),
        ("other-a", "client_other", ["c1"]))


def seed_history(simulator, make_bot, *, dense: bool = False) -> datetime:
    """Two bots of client_sharp (one with two controllers) and one of client_other, sampled
    over five weeks, with a restart of sharp-a 20 hours ago. Returns the last sample time.
    `dense` adds a sample every 20 minutes over the last day (for screenshots)."""
    simulator.advance(0)
    names = {}
    for bot_id, account, controllers in BOTS:
        live = simulator.seed_bot(bot_id, account=account, controllers=controllers,
                                  timestamped=True)
        bot = make_bot(id=bot_id, name=bot_id, account_identifier=account, status="running")
        bot.instance_name = live
        names[bot_id] = live
    db.session.commit()
    feed, client = hummingbot().feed, simulator.client()
    now = utcnow().replace(microsecond=0)
    ages = [timedelta(days=d) for d in (35, 29, 20, 8, 6, 3, 2)] + \
        [timedelta(hours=h) for h in (30, 20, 5, 1)] + [timedelta(0)]
    if dense:
        ages = sorted(set(ages) | {timedelta(minutes=20 * i) for i in range(72)}, reverse=True)
    restart = timedelta(hours=20)
    for age in ages:
        simulator.advance(1800 if age > timedelta(days=1) else 600)
        if age == restart:  # a restart: the figures start again from zero
            client.stop_bot(names["sharp-a"])
            record_samples(feed.snapshot(record=False), now=now - age - timedelta(minutes=5))
            client.start_bot(names["sharp-a"])
            simulator.advance(600)
        assert record_samples(feed.snapshot(record=False), now=now - age).ran
    return now
