"""New events move the `bot_changes` generation too, as changes to `bots` do.

Pages cache a bot's or an account's event list keyed by that generation (history/views.py,
bots.py). Most events are written with an update of their bot, which bumped it already; some
are not (a batch's `batch_skipped`), and a page would show the list as it was before them. The
same statement-level trigger function as `bots` (0005), in the same transaction as the rows.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("CREATE TRIGGER bot_events_changed AFTER INSERT ON bot_events "
               "FOR EACH STATEMENT EXECUTE FUNCTION bots_changed()")


def downgrade():
    op.execute("DROP TRIGGER IF EXISTS bot_events_changed ON bot_events")
