"""Many Hummingbot servers: `hummingbot_servers`, and every bot on one of them.

Existing bots move onto a server named `default` (its URL is filled in when the app starts with
HUMMINGBOT_API_URL). An instance name becomes unique per server instead of globally. A plain SQL
INSERT that names no server (the proposed schema's) still works: `server_id` defaults to
`default_hummingbot_server_id()`, which creates the `default` row when there is none yet.

Downgrade works while every bot is on `default` (and no instance name is used twice); it
refuses otherwise, naming what to do first.

Revision ID: 0011
Revises: 0009
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

LIVE = sa.text("archived_at IS NULL")

DEFAULT_SERVER_FUNCTION = """
CREATE FUNCTION default_hummingbot_server_id() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE found integer;
BEGIN
    SELECT id INTO found FROM hummingbot_servers WHERE name = 'default';
    IF found IS NULL THEN
        INSERT INTO hummingbot_servers (name) VALUES ('default')
        ON CONFLICT (name) DO NOTHING RETURNING id INTO found;
        IF found IS NULL THEN  -- another transaction inserted it meanwhile
            SELECT id INTO found FROM hummingbot_servers WHERE name = 'default';
        END IF;
    END IF;
    RETURN found;
END $$
"""


def upgrade():
    op.create_table(
        "hummingbot_servers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("base_url", sa.String(), nullable=True),
        sa.Column("username", sa.Text(), nullable=True),
        sa.Column("password", sa.Text(), nullable=True),
        sa.Column("extra_headers", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", sa.DateTime(), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hummingbot_servers")),
        sa.UniqueConstraint("name", name=op.f("uq_hummingbot_servers_name")),
    )
    op.execute(DEFAULT_SERVER_FUNCTION)
    op.add_column("bots", sa.Column("server_id", sa.Integer(), nullable=True))
    op.execute("UPDATE bots SET server_id = default_hummingbot_server_id() "
               "WHERE EXISTS (SELECT 1 FROM bots)")
    op.alter_column("bots", "server_id", nullable=False,
                    server_default=sa.text("default_hummingbot_server_id()"))
    op.create_foreign_key(op.f("fk_bots_server_id_hummingbot_servers"), "bots",
                          "hummingbot_servers", ["server_id"], ["id"], ondelete="RESTRICT")
    op.drop_constraint("uq_bots_instance_name", "bots", type_="unique")
    op.create_unique_constraint("uq_bots_server_instance_name", "bots",
                                ["server_id", "instance_name"])
    # The list filtered by server, page by page, like the other filters (0007).
    op.create_index("ix_bots_live_server_name_key", "bots", ["server_id", "name_key", "id"],
                    postgresql_where=LIVE)


def downgrade():
    conn = op.get_bind()
    elsewhere = conn.scalar(sa.text(
        "SELECT count(*) FROM bots b JOIN hummingbot_servers s ON s.id = b.server_id "
        "WHERE s.name <> 'default'"))
    if elsewhere:
        raise RuntimeError(
            f"cannot downgrade below 0011: {elsewhere} bot(s) are on servers other than "
            "'default'; archive and delete them, or move them, first")
    twice = conn.scalar(sa.text(
        "SELECT count(*) FROM (SELECT instance_name FROM bots WHERE instance_name IS NOT NULL "
        "GROUP BY instance_name HAVING count(*) > 1) d"))
    if twice:
        raise RuntimeError(f"cannot downgrade below 0011: {twice} instance name(s) are used by "
                           "more than one bot")
    op.drop_index("ix_bots_live_server_name_key", table_name="bots", postgresql_where=LIVE)
    op.drop_constraint("uq_bots_server_instance_name", "bots", type_="unique")
    op.create_unique_constraint("uq_bots_instance_name", "bots", ["instance_name"])
    op.drop_constraint(op.f("fk_bots_server_id_hummingbot_servers"), "bots", type_="foreignkey")
    op.drop_column("bots", "server_id")
    op.execute("DROP FUNCTION default_hummingbot_server_id()")
    op.drop_table("hummingbot_servers")
