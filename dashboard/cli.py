"""`flask --app wsgi users ...`, `... bots ...`, `... history ...`, `... secrets ...` and
`... alerts ...`."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import func, select

from .models import ROLES, User, db
from .transfer import ImportFileError, apply_import, export_bots, plan_import
from .users import UserError, create_first_admin, create_user, find_user, set_active

users_cli = AppGroup("users", help="Manage dashboard logins.")
bots_cli = AppGroup("bots", help="Export, import and reconcile bot definitions.")
history_cli = AppGroup("history", help="Performance history: statements and maintenance.")
secrets_cli = AppGroup("secrets", help="Keys for the secrets stored encrypted in the database.")


@users_cli.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--account", default=None, help="Hummingbot account a client may see.")
@click.option("--password", default=None, help="Prompted for when omitted.")
@click.option("--force", is_flag=True,
              help="Create a client login for an account no bot and no Hummingbot account has.")
def create_user_command(username: str, role: str, account: str | None, password: str | None,
                        force: bool):
    """Create a login; a client needs --account."""
    if role == "client" and account and not force:
        from .pickers import account_for_login

        known, asked = account_for_login(account)
        if not known:  # most likely a typo: the login would see nothing, ever
            where = "" if asked else " (Hummingbot could not be asked)"
            raise click.ClickException(
                f"No bot and no Hummingbot account has the account {account!r}{where}; "
                "check the spelling, or pass --force to create the login anyway.")
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = create_user(username, password, role, account)
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    scope = f" for account {user.account_identifier}" if user.account_identifier else ""
    click.echo(f"Created {user.role} {user.username}{scope}.")


@users_cli.command("list")
def list_users_command():
    for user in db.session.scalars(select(User).order_by(User.username)):
        state = "active" if user.active else "inactive"
        click.echo(f"{user.username}\t{user.role}\t{user.account_identifier or '-'}\t{state}")


@users_cli.command("deactivate")
@click.argument("username")
def deactivate_command(username: str):
    """Block a login and end its sessions."""
    user = find_user(username)
    if user is None:
        raise click.ClickException(f"No user {username}.")
    set_active(user, False)
    click.echo(f"Deactivated {user.username}; its sessions no longer work.")


@users_cli.command("end-sessions")
@click.argument("username", required=False)
@click.option("--all", "everyone", is_flag=True, help="Every login, not one.")
def end_sessions_command(username: str | None, everyone: bool):
    """Log USERNAME (or, with --all, everyone) out everywhere: their cookies stop working."""
    from .users import revoke_all_sessions, revoke_sessions

    if everyone == bool(username):
        raise click.ClickException("Name one user, or pass --all.")
    if everyone:
        click.echo(f"Ended the sessions of {revoke_all_sessions()} logins.")
        return
    user = find_user(username)
    if user is None:
        raise click.ClickException(f"No user {username}.")
    revoke_sessions(user)
    click.echo(f"Ended every session of {user.username}.")


@users_cli.command("reset-mfa")
@click.argument("username")
def reset_mfa_command(username: str):
    """Recovery for a lost authenticator: turn USERNAME's second factor off and end its
    sessions. The user logs in with the password and enrols again."""
    from .mfa import disable

    user = find_user(username)
    if user is None:
        raise click.ClickException(f"No user {username}.")
    had = user.mfa_enabled
    disable(user, event="mfa_reset", had_mfa=had)
    state = "removed" if had else "was not set up; nothing removed"
    click.echo(f"Two-factor authentication for {user.username} {state}; its sessions ended.")


@users_cli.command("ensure-admin")
def ensure_admin_command():
    """On an empty development database, create `admin` with a random password, shown once."""
    if current_app.config["APP_ENV"] == "production":
        if not db.session.scalar(select(func.count()).select_from(User)):
            raise click.ClickException(
                "No users yet. Create the first admin with: "
                "flask --app wsgi users create NAME --role admin"
            )
        return
    password = create_first_admin()
    if password is not None:
        click.echo(first_admin_banner(password))


def first_admin_banner(password: str) -> str:
    rule = "=" * 60
    return (f"\n{rule}\n  First start: created the login  admin / {password}\n"
            "  It is shown this once; keep it, or create users with\n"
            f"  flask --app wsgi users create NAME --role admin|client\n{rule}\n")


@bots_cli.command("export")
@click.argument("file", type=click.File("w"), default="-")
def export_command(file):
    """Write every definition as JSON to FILE (default: standard output)."""
    document = export_bots()
    json.dump(document, file, indent=2, sort_keys=True)
    file.write("\n")
    if file is not sys.stdout:
        click.echo(f"Exported {len(document['bots'])} bots.", err=True)


@bots_cli.command("import")
@click.argument("file", type=click.File("rb"))
@click.option("--dry-run", is_flag=True, help="Show what would happen; write nothing.")
@click.option("--yes", is_flag=True, help="Do not ask before importing despite warnings.")
def import_command(file, dry_run: bool, yes: bool):
    """Import our export or the old in-memory bot_metadata JSON. Safe to run twice."""
    from .recovery import running_warnings

    try:
        plan = plan_import(file.read())
    except ImportFileError as exc:
        for problem in exc.problems:  # every bad entry, one line each
            click.echo(f"  {problem}", err=True)
        raise click.ClickException(exc.summary) from exc
    warnings = running_warnings(plan)
    for warning in warnings:  # before anything is written
        click.echo(f"Warning: {warning}", err=True)
    if warnings and not dry_run and not yes and sys.stdin.isatty():
        click.confirm("Import anyway?", abort=True)
    if not dry_run:
        apply_import(plan, actor="cli", source=getattr(file, "name", "stdin"))
    for entry in plan.entries:
        click.echo(f"{entry.action:7} {entry.fields.id}: {entry.reason}")
    click.echo(("Would be: " if dry_run else "") + plan.summary() + ".")


@bots_cli.command("reconcile")
def reconcile_command():
    """Settle in-flight deploys and stops from what Hummingbot reports; list orphans."""
    from .lifecycle import reconcile

    report = reconcile(actor="cli")
    click.echo(report.summary())
    for bot_id in report.settled:
        click.echo(f"settled  {bot_id}")
    for bot_id in report.failed:
        click.echo(f"failed   {bot_id}")
    for bot_id in report.missing:
        click.echo(f"missing  {bot_id}")
    for live in report.orphans:
        click.echo(f"orphan   {live.name} ({live.status})")
    if not report.ran:
        raise SystemExit(1)


@bots_cli.command("history")
@click.argument("bot_id")
def history_command(bot_id: str):
    """Print BOT_ID's history, newest first, with what each edit changed."""
    from .models import Bot
    from .registry import bot_history
    from .versions import event_changes, versions

    bot = db.session.get(Bot, bot_id)
    if bot is None:
        raise click.ClickException(f"No bot {bot_id}.")
    click.echo(f"{bot.id} ({bot.name}), version {bot.version}, status {bot.status}")
    for event in bot_history(bot):
        move = (f" {event.from_status or '-'} -> {event.to_status}"
                if event.to_status and event.from_status != event.to_status else "")
        extra = "".join(f" {key}={event.details[key]}" for key in ("batch_id", "restored_from")
                        if key in event.details)
        click.echo(f"{event.occurred_at:%Y-%m-%d %H:%M:%S} UTC  {event.action} by "
                   f"{event.actor}{move}{extra}")
        for change in event_changes(event.details.get("changes") or {}):
            click.echo(f"    {change.path}: {_json(change.before)} -> {_json(change.after)}"
                       if change.kind == "changed" else
                       f"    {change.path}: {change.kind} {_json(change.after or change.before)}")
    click.echo("Versions: " + ", ".join(
        f"{view.number}{' (current)' if view.current else ''}"
        for view in versions(bot, user=OPERATOR_AT_CONSOLE)))


# Whoever runs the CLI is an operator: versions show operators' names to them.
OPERATOR_AT_CONSOLE = SimpleNamespace(is_admin=True)


def _json(value) -> str:
    return json.dumps(value, sort_keys=True)


@history_cli.command("export")
@click.option("--account", default=None, help="An account's statement.")
@click.option("--bot", "bot_id", default=None, help="One bot's statement.")
@click.option("--from", "first", default=None, help="First UTC day, YYYY-MM-DD.")
@click.option("--to", "last", default=None, help="Last UTC day, YYYY-MM-DD.")
@click.option("--output", type=click.File("w"), default="-", help="A file (default: stdout).")
def history_export_command(account, bot_id, first, last, output):
    """The statement CSV the pages offer: daily rows per bot and controller."""
    from .history.services import statement_csv, statement_rows
    from .history.views import parse_period
    from .models import Bot

    if (account is None) == (bot_id is None):
        raise click.UsageError("give exactly one of --account and --bot")
    first_day, last_day, errors = parse_period({"from": first, "to": last})
    if errors:
        raise click.UsageError("; ".join(f"--{k} {v}" for k, v in errors.items()))
    bot = None
    if bot_id is not None:
        bot = db.session.get(Bot, bot_id)
        if bot is None:
            raise click.ClickException(f"No bot {bot_id}.")
    rows = statement_rows(account=account, bot=bot, first=first_day, last=last_day)
    output.write(statement_csv(rows))
    click.echo(f"{len(rows)} rows, {first_day} to {last_day}.", err=True)


@history_cli.command("maintain")
def history_maintain_command():
    """Prune old raw samples and hourly rows now (the background job does it anyway)."""
    from .history.retention import maintain

    report = maintain(force=True)
    if not report.ran:
        raise click.ClickException(f"Skipped: {report.reason}.")
    click.echo(f"Deleted {report.raw_deleted} raw samples and {report.hourly_deleted} "
               "hourly rows.")


@secrets_cli.command("new-key")
def secrets_new_key_command():
    """Print a new key for ENCRYPTION_KEYS (put it first; keep the old ones after it)."""
    from cryptography.fernet import Fernet

    click.echo(Fernet.generate_key().decode())


@secrets_cli.command("rotate")
def secrets_rotate_command():
    """Re-encrypt every stored secret with the first key of ENCRYPTION_KEYS; afterwards the
    older keys can be removed."""
    from .sealed import UnreadableSecret, rotate_all

    try:
        count = rotate_all(db.session, db.metadata)
    except UnreadableSecret as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Re-encrypted {count} secrets with the first key.")


alerts_cli = AppGroup("alerts", help="Alerts: test a destination, list and retry deliveries.")


def _operator() -> SimpleNamespace:
    """The CLI acts as the operator: an admin over every account."""
    return SimpleNamespace(is_admin=True, account_identifier=None, username="cli")


@alerts_cli.command("test")
@click.argument("destination_id", type=int)
@click.option("--wait/--no-wait", default=True, help="Send it now and say how it went.")
def alerts_test_command(destination_id: int, wait: bool):
    """Queue a test message to a destination (by id) and, by default, send it now."""
    from werkzeug.exceptions import NotFound

    from .alerts import delivery, service

    try:
        queued = service.test_send(destination_id, _operator())
    except NotFound:
        raise click.ClickException(f"No destination {destination_id}.") from None
    click.echo(f"Queued test delivery {queued.id}.")
    if wait:
        delivery.run_pending(current_app._get_current_object(), workers=1)
        db.session.expire_all()
        sent = db.session.get(type(queued), queued.id)
        click.echo(f"Delivery {sent.id}: {sent.status}"
                   + (f" ({sent.last_error})" if sent.last_error else ""))
        if sent.status == "dead":
            sys.exit(1)


@alerts_cli.command("list")
@click.option("--status", type=click.Choice(("pending", "sending", "delivered", "dead")))
@click.option("--limit", default=50, show_default=True)
def alerts_list_command(status: str | None, limit: int):
    """Recent deliveries, newest first: id, when, event, destination, status, attempts."""
    from .alerts import service

    for row in service.list_deliveries(_operator(), status=status, limit=limit):
        click.echo(f"{row.id}\t{row.created_at:%Y-%m-%d %H:%M:%S}\t{row.event}\t"
                   f"destination {row.destination_id}\t{row.status}\t{row.attempts}\t"
                   f"{row.last_error or ''}")


@alerts_cli.command("retry")
@click.argument("delivery_id", type=int)
def alerts_retry_command(delivery_id: int):
    """Put a dead delivery back in the queue (same idempotency key)."""
    from werkzeug.exceptions import NotFound

    from .alerts import service
    from .validation import ValidationError

    try:
        service.retry_delivery(delivery_id, _operator())
    except NotFound:
        raise click.ClickException(f"No delivery {delivery_id}.") from None
    except ValidationError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Delivery {delivery_id} is pending again.")


@alerts_cli.command("evaluate")
def alerts_evaluate_command():
    """Evaluate the conditions now (the background job does it every period anyway)."""
    from .alerts.conditions import evaluate

    report = evaluate(force=True)
    if not report.ran:
        raise click.ClickException(f"Skipped: {report.reason}.")
    click.echo(f"Opened {report.opened}, fired {report.fired}, resolved {report.resolved}; "
               f"{report.queued} messages queued.")


@alerts_cli.command("work")
@click.option("--threads", default=2, show_default=True)
def alerts_work_command(threads: int):
    """Deliver messages in this process until stopped (besides the web processes' workers)."""
    from .alerts.delivery import run_forever

    run_forever(current_app._get_current_object(), threads)
# ------------------------------------------------------------------------------ servers
servers_cli = AppGroup("servers", help="Hummingbot servers the dashboard drives.")


@servers_cli.command("add")
@click.argument("name")
@click.argument("base_url")
@click.option("--username", default="", help="Hummingbot API username.")
@click.option("--password", default=None,
              help="Prompted for (hidden) when omitted; never shown back.")
@click.option("--extra-headers", default=None, help='A JSON object, e.g. {"X-Team": "a"}.')
def add_server_command(name: str, base_url: str, username: str, password: str | None,
                       extra_headers: str | None):
    """Add a server (enabled)."""
    from .servers import add_server
    from .validation import ValidationError

    if password is None:
        password = click.prompt("Password", hide_input=True, default="", show_default=False)
    try:
        add_server(name, base_url, username, password, extra_headers,
                   allow_http=_http_allowed())
    except ValidationError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Added server {name}.")


def _http_allowed() -> bool:
    return current_app.config.get("APP_ENV") != "production" \
        or bool(current_app.config.get("HUMMINGBOT_ALLOW_HTTP"))


@servers_cli.command("list")
def list_servers_command():
    """Name, state, URL and bots (credentials are never printed)."""
    from .servers import all_servers, bots_per_server

    counts = bots_per_server()
    for server in all_servers():
        defined, running = counts.get(server.id, (0, 0))
        state = "enabled" if server.enabled else "disabled"
        click.echo(f"{server.name}\t{state}\t{server.base_url or '(URL not set yet)'}\t"
                   f"{defined} bots, {running} running")


@servers_cli.command("disable")
@click.argument("name")
def disable_server_command(name: str):
    """Stop asking a server; its bots show their last status, greyed."""
    _set_enabled(name, False)


@servers_cli.command("enable")
@click.argument("name")
def enable_server_command(name: str):
    _set_enabled(name, True)


def _set_enabled(name: str, enabled: bool) -> None:
    from .servers import ServerError, set_enabled

    try:
        set_enabled(name, enabled)
    except ServerError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Server {name} {'enabled' if enabled else 'disabled'}.")


@servers_cli.command("remove")
@click.argument("name")
def remove_server_command(name: str):
    """Remove a server no bot definition is on."""
    from .servers import ServerError, remove_server

    try:
        remove_server(name)
    except ServerError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Removed server {name}.")
