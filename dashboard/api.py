"""The JSON API: the same access rules as the pages (session cookie or HTTP Basic)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask_login import current_user
from sqlalchemy import text

from .access import get_bot_or_404, public
from .disclosure import viewer_redaction
from .fleet import fleet
from .models import db
from .registry import BotFilters, filtered_bots
from .serializers import row_to_dict
from .status import merge_rows

bp = Blueprint("api", __name__)

DEFAULT_PER_PAGE = 100
MAX_PER_PAGE = 500


def _bounded_int(name: str, default: int, maximum: int) -> int:
    raw = request.args.get(name, "")
    # isascii: "²".isdigit() is True but int("²") raises.
    return min(int(raw), maximum) if raw.isascii() and raw.isdigit() and int(raw) > 0 \
        else default


@bp.route("/api/bots")
def list_bots():
    args = request.args.to_dict()
    if not current_user.is_admin:
        args.pop("account", None)  # a client's scope is fixed by visible_bots anyway
    filters = BotFilters.from_args(args)
    snapshot = fleet().snapshot()  # first: its commit would expire loaded rows
    page = db.paginate(filtered_bots(filters), page=_bounded_int("page", 1, 100_000),
                       per_page=_bounded_int("per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE),
                       error_out=False, count=True)
    redaction = viewer_redaction(current_user, page.items)
    return jsonify(bots=[row_to_dict(row, redaction) for row in merge_rows(page.items, snapshot)],
                   page=page.page, per_page=page.per_page, total=page.total,
                   hummingbot=_hummingbot_state(snapshot))


@bp.route("/api/bots/<bot_id>")
def get_bot(bot_id: str):
    bot = get_bot_or_404(bot_id)  # first: a refused id must not cost a call to Hummingbot
    snapshot = fleet().server_snapshot(bot.server_id)
    [row] = merge_rows([bot], snapshot)
    return jsonify(row_to_dict(row, viewer_redaction(current_user, [bot])))


def _hummingbot_state(snapshot) -> dict:
    return {"reachable": snapshot.reachable, "error": snapshot.error_kind}


@bp.route("/readyz")
@public
def readyz():
    """Ready to serve: database up and migrated to head. Hummingbot is reported, not required:
    the pages work from the database while it is down."""
    from .readiness import readiness

    report = readiness()
    return jsonify(report), 200 if report["ready"] else 503


@bp.route("/healthz")
@public
def healthz():
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:  # any failure to reach PostgreSQL is "down" to a health probe
        db.session.rollback()
        return jsonify(database="unreachable"), 503
    return jsonify(database="ok")
