"""Example: a Flask app with two-factor login, an otp-header API and an admin page.

From a checkout, with Python 3.11+::

    python -m pip install '.[flask,qr]' && python examples/webapp/app.py

Then open http://127.0.0.1:8000/ and sign in as ``admin`` / ``admin-password`` (an admin) or
``alice`` / ``alice-password``. The admin page enables two-factor for alice; her next login
shows the setup screen. The API answers ``GET /api/whoami`` for HTTP Basic credentials plus the
current code in the ``otp`` header::

    curl -u alice:alice-password -H "otp: 123456" http://127.0.0.1:8000/api/whoami

The two-factor records live in the SQLite file ``--db`` (the store wants a file of its own);
the users live next to it, in the same name plus ``-users``. Passwords are hashed with
``hashlib.scrypt``. Every line of two-factor code ends in a ``2fa`` comment; count them with
``grep -cE '# 2fa(:|$)' examples/webapp/app.py``. The rest is what any Flask app with
passwords and an admin page already has; the two-factor pages come from the blueprint.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import secrets
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

import totpcore  # 2fa
from totpcore.web.flask import (  # 2fa
    begin_second_factor,  # 2fa
    blueprint,  # 2fa
    check_csrf,  # 2fa
    current_user_id,  # 2fa
    logout,  # 2fa
    otp_required,  # 2fa
    otp_user_id,  # 2fa
    status_list,  # 2fa
)  # 2fa

ISSUER = "Example Webapp"
SEED = {"admin": ("admin-password", True), "alice": ("alice-password", False)}
DEFAULT_DB = Path(tempfile.gettempdir()) / "totpcore-webapp.sqlite3"


class Users:
    """The application's own accounts: a name, an scrypt password hash and an admin flag.

    Args:
        path: The SQLite file of the application's own tables.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sql(
            "CREATE TABLE IF NOT EXISTS app_users (name TEXT PRIMARY KEY, salt BLOB NOT NULL, "
            "hash BLOB NOT NULL, admin INTEGER NOT NULL)"
        )
        # Hashed once, so an unknown name costs as much as a known one (no timing oracle).
        self._dummy = (secrets.token_bytes(16), b"")

    def _sql(self, statement: str, *args: Any) -> list[Any]:
        """Run one statement in its own connection and transaction."""
        db = sqlite3.connect(self.path, timeout=10)
        try:
            with db:
                return db.execute(statement, args).fetchall()
        finally:
            db.close()

    @staticmethod
    def _hash(password: str, salt: bytes) -> bytes:
        """Hash with scrypt at 16 MiB of memory (n=2**14, r=8): the standard library's slow hash."""
        return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)

    def add(self, name: str, password: str, *, admin: bool = False) -> None:
        """Create a user unless one of that name exists."""
        salt = secrets.token_bytes(16)
        self._sql(
            "INSERT OR IGNORE INTO app_users VALUES (?, ?, ?, ?)",
            name,
            salt,
            self._hash(password, salt),
            int(admin),
        )

    def check(self, name: str, password: str) -> bool:
        """Whether ``password`` is the user's."""
        rows = self._sql("SELECT salt, hash FROM app_users WHERE name = ?", name)
        salt, stored = rows[0] if rows else self._dummy
        return hmac.compare_digest(self._hash(password, salt), stored) and bool(rows)

    def names(self) -> list[str]:
        """Every user name, sorted."""
        return [name for (name,) in self._sql("SELECT name FROM app_users ORDER BY name")]

    def is_admin(self, name: str | None) -> bool:
        """Whether ``name`` is an admin."""
        rows = self._sql("SELECT admin FROM app_users WHERE name = ?", name)
        return bool(rows and rows[0][0])


class Webapp:
    """The application, seeding its two users.

    Args:
        db: The two-factor store's SQLite file; the users live in the same name + ``-users``.
    """

    def __init__(self, db: Path) -> None:
        self.users = Users(db.with_name(db.name + "-users"))
        for name, (password, admin) in SEED.items():
            self.users.add(name, password, admin=admin)
        self.service = totpcore.TwoFactor(totpcore.SQLiteStore(db), issuer=ISSUER)  # 2fa
        self.app = app = Flask(__name__)
        # A new key per start: sessions end when the server restarts, which suits an example.
        app.secret_key = secrets.token_hex(32)
        app.config.update(SESSION_COOKIE_SAMESITE="Lax")
        app.register_blueprint(blueprint(self.service))  # 2fa: /2fa/setup, /2fa/verify, ...
        app.before_request(check_csrf)  # 2fa: the app's own forms carry the token too
        otp_header = otp_required(self.service, user_id=self.api_user)  # 2fa: the API's check
        for rule, view, methods in (
            ("/", self.home, ["GET"]),
            ("/login", self.login, ["GET", "POST"]),
            ("/logout", self.log_out, ["POST"]),
            ("/admin", self.admin, ["GET"]),
            ("/admin/<action>", self.admin_action, ["POST"]),
            ("/api/whoami", otp_header(self.whoami), ["GET"]),
        ):
            app.add_url_rule(rule, view_func=view, methods=methods)

    def require_admin(self) -> None:
        """Refuse (403) anyone but a logged-in admin."""
        if not self.users.is_admin(current_user_id()):  # 2fa
            abort(403)

    def api_user(self) -> str:
        """The user of an API request, by HTTP Basic; anything else is asked to authenticate."""
        auth = request.authorization
        if auth is None or not self.users.check(auth.username or "", auth.password or ""):
            body = json.dumps({"error": "unauthorized", "message": "HTTP Basic credentials"})
            headers = {"WWW-Authenticate": 'Basic realm="api"', "Content-Type": "application/json"}
            abort(Response(body, 401, headers))
        return auth.username or ""

    def home(self) -> str | BaseResponse:
        """The signed-in user's page."""
        user = current_user_id()  # 2fa
        if user is None:
            return redirect(url_for("login"))
        return render_template("home.html", user=user, admin=self.users.is_admin(user))

    def login(self) -> str | BaseResponse:
        """The password step; the second factor follows."""
        if request.method == "POST":
            name = request.form.get("username", "")
            if self.users.check(name, request.form.get("password", "")):
                return begin_second_factor(name)  # 2fa: to setup, to verify, or logged in
            flash("Wrong user name or password.")
        return render_template("login.html")

    def log_out(self) -> BaseResponse:
        """End the session's login."""
        logout()  # 2fa
        return redirect(url_for("login"))

    def admin(self) -> str:
        """The admin page: every user's two-factor status, and the actions."""
        self.require_admin()
        statuses = status_list(self.service, self.users.names())  # 2fa
        return render_template("admin.html", users=statuses)

    def admin_action(self, action: str) -> BaseResponse:
        """Enable (one or all), reset, unlock or disable two-factor."""
        self.require_admin()
        name = request.form.get("user", "")
        if action == "enable-all":
            self.service.enable_many(self.users.names())  # 2fa
        elif action in {"enable", "reset", "unlock", "disable"} and name in self.users.names():
            try:
                getattr(self.service, action)(name)  # 2fa: enable, reset, unlock, disable
            except totpcore.UserStateError as error:  # 2fa: say, a reset before setup
                flash(str(error))
                return redirect(url_for("admin"))
        else:
            abort(404)
        flash(f"{action} {name}".strip() + ": done.")
        return redirect(url_for("admin"))

    def whoami(self) -> dict[str, Any]:
        """The API: who the Basic credentials and the otp header authenticated."""
        return {"user": otp_user_id()}  # 2fa


def main(argv: list[str] | None = None) -> None:
    """Parse the options, print the seeded users, and serve until interrupted."""
    parser = argparse.ArgumentParser(description="totpcore example web application")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument(
        "--db", type=Path, default=DEFAULT_DB, help=f"two-factor SQLite file (default {DEFAULT_DB})"
    )
    args = parser.parse_args(argv)
    app = Webapp(args.db).app
    print(f"totpcore example on http://{args.host}:{args.port}/ (database {args.db})")
    for name, (password, admin) in SEED.items():
        print(f"  user {name!r}, password {password!r}" + (" (admin)" if admin else ""))
    app.run(host=args.host, port=args.port)


if __name__ == "__main__":
    main()
