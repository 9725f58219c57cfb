"""The merged status as a column, the facts behind it, and a natural name order.

`display_status` is the badge (status.py's badge_rule), kept when a status snapshot is
recorded and on every write of a bot, so the list filters, counts and sorts by it in
PostgreSQL; `needs_attention` marks the badges (and error-log marks) that need an operator.
`live_state`, `pnl_quote`, `volume_quote` and `error_log` are what the last snapshot said;
`start_requested_at` is a Start still waiting for the bot's first report.

`name_key` orders names naturally (bot-2 before bot-10): every digit run prefixed with its
length by an IMMUTABLE SQL function, as a stored generated column, so it needs no ICU
collation (the embedded PostgreSQL has none) and rows inserted by any statement get it.

The list indexes move from `name` and `status` to `name_key` and `display_status`. A fill
factor of 80 leaves room on each page, so the frequent rewrites of PnL and volume (columns no
index covers) are HOT updates that touch no index.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

LIVE = sa.text("archived_at IS NULL")

# Each digit run becomes its length (one character, '0' + length) and its digits without
# leading zeros: 'bot-2' -> 'bot-12', 'bot-10' -> 'bot-210', so shorter numbers sort first
# whatever their length, and the key stays about as short as the name.
NATURAL_SORT_KEY = """
CREATE FUNCTION natural_sort_key(value text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(string_agg(
        CASE WHEN m.part[1] ~ '^[0-9]'
             THEN chr(48 + length(ltrim(m.part[1], '0'))) || ltrim(m.part[1], '0')
             ELSE m.part[1] END, '' ORDER BY m.n), '')
    FROM regexp_matches(lower(value), '[0-9]+|[^0-9]+', 'g') WITH ORDINALITY AS m(part, n)
$$
"""


def upgrade():
    op.execute(NATURAL_SORT_KEY)
    op.execute("ALTER TABLE bots SET (fillfactor = 80)")
    op.add_column("bots", sa.Column("display_status", sa.String(), nullable=False,
                                    server_default=sa.text("'stopped'")))
    op.add_column("bots", sa.Column("needs_attention", sa.Boolean(), nullable=False,
                                    server_default=sa.text("false")))
    op.add_column("bots", sa.Column("live_state", sa.String(), nullable=True))
    op.add_column("bots", sa.Column("pnl_quote", sa.Double(), nullable=True))
    op.add_column("bots", sa.Column("volume_quote", sa.Double(), nullable=True))
    op.add_column("bots", sa.Column("error_log", sa.Text(), nullable=True))
    op.add_column("bots", sa.Column("start_requested_at", sa.DateTime(), nullable=True))
    op.add_column("bots", sa.Column(
        "name_key", sa.Text(collation="C"),
        sa.Computed("natural_sort_key(name)", persisted=True), nullable=True))
    # A first badge from the definition alone; the first recorded snapshot completes it.
    op.execute("""
        UPDATE bots SET display_status = CASE
            WHEN archived_at IS NOT NULL THEN 'archived'
            WHEN status IN ('deploying', 'stopping', 'deploy_failed', 'stopped') THEN status
            WHEN status IS NULL THEN 'stopped'
            ELSE 'unknown' END,
          needs_attention = (archived_at IS NULL AND status = 'deploy_failed')
    """)
    op.drop_index("ix_bots_live_status_name", table_name="bots")
    op.drop_index("ix_bots_live_account_name", table_name="bots")
    op.drop_index("ix_bots_live_name", table_name="bots")
    op.create_index("ix_bots_live_name_key", "bots", ["name_key", "id"], postgresql_where=LIVE)
    op.create_index("ix_bots_live_account_name_key", "bots",
                    ["account_identifier", "name_key", "id"], postgresql_where=LIVE)
    op.create_index("ix_bots_live_display_name_key", "bots",
                    ["display_status", "name_key", "id"], postgresql_where=LIVE)
    op.create_index("ix_bots_attention_name_key", "bots", ["name_key", "id"],
                    postgresql_where=sa.text("needs_attention"))


def downgrade():
    op.drop_index("ix_bots_attention_name_key", table_name="bots")
    op.drop_index("ix_bots_live_display_name_key", table_name="bots")
    op.drop_index("ix_bots_live_account_name_key", table_name="bots")
    op.drop_index("ix_bots_live_name_key", table_name="bots")
    op.create_index("ix_bots_live_name", "bots", ["name", "id"], postgresql_where=LIVE)
    op.create_index("ix_bots_live_account_name", "bots", ["account_identifier", "name", "id"],
                    postgresql_where=LIVE)
    op.create_index("ix_bots_live_status_name", "bots", ["status", "name", "id"],
                    postgresql_where=LIVE)
    for column in ("name_key", "start_requested_at", "error_log", "volume_quote", "pnl_quote",
                   "live_state", "needs_attention", "display_status"):
        op.drop_column("bots", column)
    op.execute("DROP FUNCTION natural_sort_key(text)")
    op.execute("ALTER TABLE bots RESET (fillfactor)")
