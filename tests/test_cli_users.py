"""`flask users ...`."""

from dashboard.models import User, db
from dashboard.users import authenticate, find_user


def test_create_admin_and_client(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "create", "boss", "--role", "admin",
                                 "--password", "a fine passphrase"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["users", "create", "cs", "--role", "client", "--account",
                                 "client_sharp", "--password", "another passphrase"])
    assert "Created client cs for account client_sharp." in result.output
    assert find_user("cs").account_identifier == "client_sharp"
    assert authenticate("boss", "a fine passphrase").role == "admin"


def test_client_needs_an_account(app):
    result = app.test_cli_runner().invoke(args=["users", "create", "cs", "--role", "client",
                                                "--password", "another passphrase"])
    assert result.exit_code != 0 and "needs --account" in result.output


def test_password_is_prompted_when_omitted(app):
    result = app.test_cli_runner().invoke(
        args=["users", "create", "prompted", "--role", "admin"],
        input="typed passphrase\ntyped passphrase\n")
    assert result.exit_code == 0, result.output
    assert authenticate("prompted", "typed passphrase") is not None


def test_weak_or_duplicate_users_are_refused(app):
    runner = app.test_cli_runner()
    weak = runner.invoke(args=["users", "create", "w", "--role", "admin", "--password", "short"])
    assert weak.exit_code != 0 and "at least 8" in weak.output
    dup = runner.invoke(args=["users", "create", "admin", "--role", "admin",
                              "--password", "a fine passphrase"])
    assert dup.exit_code != 0 and "already exists" in dup.output


def test_ensure_admin_does_nothing_when_users_exist(app):
    result = app.test_cli_runner().invoke(args=["users", "ensure-admin"])
    assert result.exit_code == 0 and result.output == ""


def test_ensure_admin_on_an_empty_database_prints_a_password_once(app):
    db.session.execute(db.delete(User))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "ensure-admin"])
    assert "created the login  admin / " in result.output
    password = result.output.split("admin / ")[1].split()[0]
    assert authenticate("admin", password) is not None
    assert runner.invoke(args=["users", "ensure-admin"]).output == ""


def test_ensure_admin_never_in_production(app):
    db.session.execute(db.delete(User))
    app.config["APP_ENV"] = "production"
    try:
        result = app.test_cli_runner().invoke(args=["users", "ensure-admin"])
    finally:
        app.config["APP_ENV"] = "test"
    assert result.exit_code != 0 and "Create the first admin" in result.output
    assert db.session.scalar(db.select(db.func.count()).select_from(User)) == 0


def test_deactivate(app):
    result = app.test_cli_runner().invoke(args=["users", "deactivate", "sharp"])
    assert result.exit_code == 0
    assert find_user("sharp").active is False
