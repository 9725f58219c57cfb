"""History pages: the account page, statements (CSV), and the JSON history routes."""

from __future__ import annotations

from flask import Blueprint

from . import models  # noqa: F401 - the tables join the metadata (migrations' drift check)

bp = Blueprint("history", __name__)
