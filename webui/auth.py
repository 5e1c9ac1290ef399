"""A password login for Locust's --web-login, for when the web UI is bound to an address other people
can reach. Locust's --web-login only turns the login page on; a locustfile has to supply the check.
This one takes VOICELOAD_WEB_USER (default "voiceload") and VOICELOAD_WEB_PASSWORD from the environment.
A locustfile that installed its own user loader keeps it."""

from __future__ import annotations

import hmac
import os
import secrets
import sys

from flask import Blueprint, redirect, request, session
from flask_login import UserMixin, login_user
from locust.env import Environment

from locust_adapters import internals
from webui.credentials import credentials, credentials_problem


class _WebUser(UserMixin):
    def __init__(self, username: str) -> None:
        self.id = username


def install_password_login(environment: Environment, blueprint: Blueprint, url_prefix: str) -> None:
    """Call before `blueprint` is registered: adds its login_submit route and points Locust's login form at it."""
    web_ui = environment.web_ui
    manager = web_ui.login_manager
    if manager.user_callback is not None:
        return  # the locustfile brought its own authentication
    if problem := credentials_problem():
        print(f"error: {problem}", file=sys.stderr)
        sys.stderr.flush()
        os._exit(2)  # before anything starts, as for other bad configuration
    username, password = credentials()
    app = web_ui.app
    app.config["SECRET_KEY"] = app.config.get("SECRET_KEY") or os.environ.get("FLASK_SECRET_KEY") or secrets.token_hex(32)
    manager.user_loader(lambda user_id: _WebUser(user_id) if user_id == username else None)
    web_ui.auth_args = {**web_ui.auth_args, "username_password_callback": f"{url_prefix}/login_submit"}

    @blueprint.route("/login_submit", methods=["POST"])
    def login_submit():
        given_user = request.form.get("username", "")
        given_password = request.form.get("password", "")
        user_ok = hmac.compare_digest(given_user.encode(), username.encode())
        password_ok = hmac.compare_digest(given_password.encode(), password.encode())
        if user_ok and password_ok:
            login_user(_WebUser(username))
            return redirect(internals.index_url())
        session["auth_error"] = "Invalid username or password"
        return redirect(internals.login_url())
