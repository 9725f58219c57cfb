"""Extensions created unbound; `create_app` initialises them."""

from flask_login import LoginManager
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect

from .models import db

login_manager = LoginManager()
migrate = Migrate()
csrf = CSRFProtect()

__all__ = ["csrf", "db", "login_manager", "migrate"]
