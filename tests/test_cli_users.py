"""`flask users ...`."""

from dashboard.models import User, db
from dashboard.users import authenticate, find_user


def test_create_admin_and_client(app, make_bot):
    make_bot()  # a bot of client_sharp: the account exists
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


def test_a_client_login_for_an_account_nobody_has_is_refused_unless_forced(app, simulator):
    runner = app.test_cli_runner()
    typo = runner.invoke(args=["users", "create", "cs", "--role", "client", "--account",
                               "client_shrap", "--password", "another passphrase"])
    assert typo.exit_code != 0
    assert "No bot and no Hummingbot account has the account 'client_shrap'" in typo.output
    assert find_user("cs") is None

    forced = runner.invoke(args=["users", "create", "cs", "--role", "client", "--account",
                                 "client_shrap", "--password", "another passphrase", "--force"])
    assert forced.exit_code == 0, forced.output
    assert find_user("cs").account_identifier == "client_shrap"


def test_a_client_login_for_an_account_only_hummingbot_has_is_created(app, simulator):
    simulator.state.add_account("client_fresh")
    result = app.test_cli_runner().invoke(args=[
        "users", "create", "fresh", "--role", "client", "--account", "client_fresh",
        "--password", "another passphrase"])
    assert result.exit_code == 0, result.output


def test_the_refusal_says_when_hummingbot_could_not_be_asked(app, simulator):
    simulator.set_fault("unreachable")
    result = app.test_cli_runner().invoke(args=[
        "users", "create", "cs", "--role", "client", "--account", "client_fresh",
        "--password", "another passphrase"])
    assert result.exit_code != 0 and "(Hummingbot could not be asked)" in result.output
