"""Tables of alerts (migration 0010).

Names follow the brief. Additions, each said where it is: `alert_clock` (one row, as
performance_clock), `alert_mutes.created_at`,
`alert_deliveries.event` also takes 'test', and the partial unique index on open alerts treats
NULL bot ids as equal (NULLS NOT DISTINCT, PostgreSQL 15), so a fleet-wide condition such as
Hummingbot unreachable has one open episode too.

An alert is one (subject, condition) episode: pending while the condition has not yet held for
a rule's hold time, firing, then resolved. Deliveries are the outbox: written in the same
transaction as the alert's transition (conditions.py), claimed by workers (delivery.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from ..models import db
from ..sealed import Sealed

DESTINATION_KINDS = ("webhook", "slack", "discord", "telegram", "email")
# Condition codes (conditions.py says how each is evaluated and when it resolves).
CONDITIONS = ("missing", "crashed", "deploy_failed", "stuck", "archived_running",
              "error_lines", "drawdown", "hummingbot_unreachable")
ALERT_STATES = ("pending", "firing", "resolved")
EVENTS = ("fired", "repeat", "resolved", "test")
DELIVERY_STATES = ("pending", "sending", "delivered", "dead")


def _in(values) -> str:
    return ", ".join(f"'{v}'" for v in values)


class AlertClock(db.Model):
    """One row: when conditions were last evaluated fleet-wide, and since when Hummingbot has
    been failing the status call (NULL: it answers), recorded from the snapshots the
    dashboard takes anyway (conditions.record_hummingbot): no call of its own."""

    __tablename__ = "alert_clock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    evaluated_at: Mapped[datetime | None] = mapped_column(DateTime)
    hummingbot_failing_since: Mapped[datetime | None] = mapped_column(DateTime)
    # "unreachable", "timeout", "auth", "protocol" (LiveSnapshot.error_kind); never its text.
    hummingbot_error_kind: Mapped[str | None] = mapped_column(String)
    # The drawdown reads every bot's samples in its window: it is computed again only when
    # its inputs changed (a new sample period, a rule changed) or a few minutes went by.
    drawdown_at: Mapped[datetime | None] = mapped_column(DateTime)
    drawdown_inputs: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)


class AlertDestination(db.Model):
    """Where messages go. `target` is the secret part (webhook URL, Telegram bot token, SMTP
    password) and `signing_secret` the webhook's HMAC key: both sealed, shown only by hint()."""

    __tablename__ = "alert_destinations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String, nullable=False)
    kind: Mapped[str] = mapped_column(String, nullable=False)
    # NULL: the operator's, may serve every account; else owned by that client account.
    account_identifier: Mapped[str | None] = mapped_column(String)
    target: Mapped[str | None] = mapped_column(Sealed())
    # Non-secret settings: telegram chat_id; email host, port, from, to, starttls, username.
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False,
                                                     server_default=text("'{}'::jsonb"))
    signing_secret: Mapped[str | None] = mapped_column(Sealed())
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    created_by: Mapped[str] = mapped_column(String, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False,
                                                 server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False,
                                                 server_default=func.now(), onupdate=func.now())

    __table_args__ = (
        CheckConstraint(f"kind IN ({_in(DESTINATION_KINDS)})", name="kind"),
        Index("ix_alert_destinations_account", "account_identifier"),
    )

    def __repr__(self) -> str:  # never the target or the signing secret
        return f"<AlertDestination {self.id} {self.kind} {self.name!r}>"


class AlertRule(db.Model):
    """Which conditions, for which account (NULL: all), go to which destination, how long a
    condition must hold before it fires and how often a long one is repeated (0: never)."""

    __tablename__ = "alert_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String, nullable=False)
    account_identifier: Mapped[str | None] = mapped_column(String)
    conditions: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    destination_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("alert_destinations.id", ondelete="CASCADE"), nullable=False)
    hold_seconds: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    repeat_seconds: Mapped[int] = mapped_column(Integer, nullable=False,
                                                server_default=text("0"))
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    # {"drawdown_amount": 100.0, "drawdown_window_minutes": 60, "unreachable_minutes": 5}
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False,
                                                   server_default=text("'{}'::jsonb"))
    created_by: Mapped[str] = mapped_column(String, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False,
                                                 server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False,
                                                 server_default=func.now(), onupdate=func.now())

    __table_args__ = (
        CheckConstraint("hold_seconds >= 0 AND repeat_seconds >= 0", name="intervals"),
        Index("ix_alert_rules_destination", "destination_id"),
    )


class AlertMute(db.Model):
    """No messages for a bot, or an account's bots, until `until`. Both NULL: every alert
    (the operator's maintenance window); the service lets only admins write that."""

    __tablename__ = "alert_mutes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bot_id: Mapped[str | None] = mapped_column(String, ForeignKey("bots.id", ondelete="CASCADE"))
    account_identifier: Mapped[str | None] = mapped_column(String)
    until: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False,
                                                 server_default=func.now())

    __table_args__ = (Index("ix_alert_mutes_until", "until"),)


class Alert(db.Model):
    """One (subject, condition) episode. `detail` may quote Hummingbot (an error line): it is
    untrusted text, stored as is, rendered escaped, never put in a URL or an attribute."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # NULL for fleet-wide conditions (Hummingbot unreachable).
    bot_id: Mapped[str | None] = mapped_column(String, ForeignKey("bots.id", ondelete="CASCADE"))
    account_identifier: Mapped[str | None] = mapped_column(String)
    condition: Mapped[str] = mapped_column(String, nullable=False)
    state: Mapped[str] = mapped_column(String, nullable=False, server_default=text("'pending'"))
    since: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    fired_at: Mapped[datetime | None] = mapped_column(DateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_notified_at: Mapped[datetime | None] = mapped_column(DateTime)
    detail: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint(f"state IN ({_in(ALERT_STATES)})", name="state"),
        # One open episode per (bot, condition); NULL bot ids count as the same subject.
        Index("ux_alerts_open", "bot_id", "condition", unique=True,
              postgresql_where=text("state <> 'resolved'"),
              postgresql_nulls_not_distinct=True),
        Index("ix_alerts_account_open", "account_identifier",
              postgresql_where=text("state <> 'resolved'")),
        Index("ix_alerts_resolved_at", "resolved_at"),
    )


class AlertDelivery(db.Model):
    """The outbox: one message to one destination. At least once: the idempotency key goes in
    the `Idempotency-Key` header and the payload, so a receiver can drop a duplicate."""

    __tablename__ = "alert_deliveries"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    alert_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("alerts.id", ondelete="CASCADE"))  # NULL: a test send
    destination_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("alert_destinations.id", ondelete="CASCADE"), nullable=False)
    event: Mapped[str] = mapped_column(String, nullable=False)
    idempotency_key: Mapped[Any] = mapped_column(UUID(as_uuid=True), nullable=False,
                                                 unique=True,
                                                 server_default=text("gen_random_uuid()"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False,
                                                    server_default=text("'{}'::jsonb"))
    status: Mapped[str] = mapped_column(String, nullable=False, server_default=text("'pending'"))
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, nullable=False,
                                                      server_default=func.now())
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False,
                                                 server_default=func.now())
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        CheckConstraint(f"event IN ({_in(EVENTS)})", name="event"),
        CheckConstraint(f"status IN ({_in(DELIVERY_STATES)})", name="status"),
        # The workers' claim: only unfinished rows are indexed, in due order.
        Index("ix_alert_deliveries_due", "next_attempt_at", "id",
              postgresql_where=text("status IN ('pending', 'sending')")),
        # "Was this alert already told to this destination?" (repeat and resolved messages).
        Index("ix_alert_deliveries_alert_destination", "alert_id", "destination_id"),
        Index("ix_alert_deliveries_created_at", "created_at"),
    )
