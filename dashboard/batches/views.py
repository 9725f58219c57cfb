"""/batches: the preview of a bulk action, its confirmation, progress and the list. Admins only."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_login import current_user

from ..access import admin_only
from ..bots import _page_number, wants_fragment
from ..fleet import fleet
from ..models import Batch, db
from ..registry import actor_name, utcnow
from ..validation import ValidationError
from . import executor, service

STOP_POLLING = 286
bp = Blueprint("batches", __name__)


def _fleet_status(selection: service.Selection):
    """The fleet's shared status (one snapshot per server) and the servers' names, for the
    actions that depend on it: a bot whose server is down is skipped, with the reason.
    Taken before the bots are loaded: a fresh one commits last-seen statuses, which would
    expire the bots loaded before it and re-read them one statement each."""
    if selection.action not in service.STATUS_ACTIONS:
        return None, {}
    snapshot = fleet().snapshot()
    return snapshot, fleet().names(refresh=False)


def _preview(selection: service.Selection, errors: dict[str, str] | None = None,
             status: int = 200):
    snapshot, names = _fleet_status(selection)
    items = service.plan(selection.action, service.selected_bots(selection), snapshot, names)
    return render_template(
        "batches/preview.html", selection=selection, items=items,
        acting=sum(1 for item in items if item.acts), skips=service.skip_summary(items),
        title=service.TITLES[selection.action], asks_orders=selection.action in
        service.ASKS_ORDERS, snapshot=snapshot, errors=errors or {},
        cancel_orders=request.form.get("cancel_orders", "1"), server_names=names), status


@bp.route("/batches/new")
@admin_only
def preview():
    """GET: what the action would do to each selected bot. Sends nothing."""
    try:
        selection = service.parse_selection(request.args)
    except ValidationError as exc:
        return render_template("batches/invalid.html", errors=exc.errors,
                               back=request.args.to_dict(flat=False)), 400
    return _preview(selection)


@bp.route("/batches", methods=["GET", "POST"])
@admin_only
def index():
    if request.method == "GET":
        page = service.recent_batches(_page_number())
        return render_template("batches/index.html", page=page,
                               counts=service.counts([b.id for b in page.items]),
                               describe=service.describe, titles=service.TITLES)
    try:
        selection = service.parse_selection(request.form)
    except ValidationError as exc:
        return render_template("batches/invalid.html", errors=exc.errors,
                               back=request.form.to_dict(flat=False)), 400
    snapshot, names = _fleet_status(selection)
    try:
        batch = service.create_batch(selection, actor_name(current_user),
                                     cancel_orders=request.form.get("cancel_orders") != "0",
                                     snapshot=snapshot, names=names)
    except ValidationError as exc:
        db.session.rollback()
        return _preview(selection, exc.errors, 422)
    pool = executor.workers(current_app._get_current_object())
    if pool is not None:
        pool.wake()  # this process starts at once; others find the items within a poll
    return redirect(url_for("batches.show", batch_id=batch.id), 303)


@bp.route("/batches/<batch_id>")
@admin_only
def show(batch_id: str):
    batch = db.get_or_404(Batch, batch_id)
    context = {"batch": batch, "counts": service.counts([batch.id])[batch.id],
               "items": service.batch_items(batch), "title": service.TITLES[batch.action],
               "describe": service.describe, "as_of": utcnow()}
    if wants_fragment():
        # 286 is htmx's "stop polling": the finished batch's last fragment is swapped in and
        # the page asks no more.
        status = STOP_POLLING if batch.finished_at else 200
        return render_template("batches/_progress.html", **context), status
    return render_template("batches/show.html", **context)
