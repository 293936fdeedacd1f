"""Who may log in: NativeAuthenticator with safe settings, and the first admin.

Rule: outside ``--dev`` only real authenticators run (NativeAuthenticator, or OIDC on
Kubernetes); a dummy or shared-password authenticator is refused before anything starts.
The first admin account is created once, from a password the supervisor put in a 0600
file (or took from the environment); it is never reset by a later start.
"""

from __future__ import annotations

import asyncio
import os

import bcrypt
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.handlers import DiscardHandler as _NativeDiscardHandler
from nativeauthenticator.handlers import LoginHandler as _NativeLoginHandler
from nativeauthenticator.handlers import SignUpHandler as _NativeSignUpHandler
from nativeauthenticator.handlers import ToggleAuthorizationHandler as _NativeToggleHandler
from tornado import web
from traitlets import Unicode

from idsp.errors import UserError

TEST_AUTHENTICATORS = {"dummy", "shared-password", "null"}
# Environment variable through which the supervisor hands the hub the first admin's password.
ADMIN_PASSWORD_ENV = "IDSP_HUB_INITIAL_ADMIN_PASSWORD"


def refuse_unsafe(authenticator: str, dev: bool) -> None:
    if authenticator in TEST_AUTHENTICATORS and not dev:
        raise UserError(
            f"hub.authenticator is {authenticator!r}, a test authenticator that lets anyone "
            "in with any (or one shared) password; it is refused outside development",
            where="platform.yaml: hub.authenticator",
            fix="Use 'native' (accounts approved by an admin) or 'oidc'; for a throw-away "
            "local hub run `idsp hub up --dev`",
        )


class _NoStats:
    def timer(self, _name):
        return self

    def start(self):
        return self

    def stop(self, send=True):
        return None


class LoginHandler(_NativeLoginHandler):
    # NativeAuthenticator 1.3.0 still times logins with ``self.statsd``, which JupyterHub 6
    # removed; without this every login POST is a 500.
    statsd = _NoStats()


def signup_problem(authenticator, username: str, password: str) -> str | None:
    """Which sign-up rule ``username``/``password`` break, in Dutch and English; None if none.

    The same checks as NativeAuthenticator's ``create_user`` (which only returns None), in the
    same order, so the page can name the rule instead of "Something went wrong!"."""
    name = authenticator.normalize_username(username)
    if not authenticator.validate_username(name):
        return (
            f"De gebruikersnaam {name!r} is niet toegestaan: begin met een kleine letter, "
            "gebruik daarna alleen kleine letters, cijfers, punt of liggend streepje (_), "
            "hoogstens 24 tekens, geen spatie of koppelteken. "
            f"The user name {name!r} is not allowed: start with a lower-case letter, then only "
            "lower-case letters, digits, dot or underscore, at most 24 characters."
        )
    minimum = authenticator.minimum_password_length
    if len(password) < minimum:
        return (
            f"Het wachtwoord is te kort: minimaal {minimum} tekens (dit heeft er {len(password)}). "
            f"The password is too short: at least {minimum} characters (this one has {len(password)})."
        )
    if authenticator.check_common_password and authenticator.is_password_common(password):
        return (
            "Dit wachtwoord staat op de lijst van veelgebruikte wachtwoorden; kies een ander. "
            "This password is on the list of common passwords; choose another one."
        )
    return None


class SignUpHandler(_NativeSignUpHandler):
    """NativeAuthenticator's sign-up page, but a refused sign-up names the rule it broke."""

    def get_result_message(self, user, assume_user_is_human, username_already_taken,
                           confirmation_matches, user_is_admin):
        alert, message = super().get_result_message(
            user, assume_user_is_human, username_already_taken, confirmation_matches, user_is_admin
        )
        if not assume_user_is_human:
            return alert, message
        if username_already_taken:
            return alert, (
                "Deze gebruikersnaam is al in gebruik; kies een andere. "
                "This user name is already taken; choose another one."
            )
        if not confirmation_matches:
            return alert, (
                "Het wachtwoord en de herhaling zijn niet gelijk; typ ze opnieuw. "
                "The password and its confirmation differ; type them again."
            )
        if user is None:
            problem = signup_problem(
                self.authenticator,
                self.get_body_argument("username", "", strip=False),
                self.get_body_argument("signup_password", "", strip=False),
            )
            # None here: a rule this module does not know refused it; keep upstream's text
            return alert, problem or message
        return alert, message


class _SameSiteOnly:
    """NativeAuthenticator approves (and discards) users on a plain GET, so a link on another
    site could make a logged-in admin approve an attacker's sign-up. Refuse cross-site GETs."""

    def _check_same_site(self):
        site = self.request.headers.get("Sec-Fetch-Site", "")
        if site and site not in ("same-origin", "none"):
            raise web.HTTPError(403, "cross-site request refused")
        referer = self.request.headers.get("Referer", "")
        if referer and not referer.startswith(f"{self.request.protocol}://{self.request.host}/"):
            raise web.HTTPError(403, "cross-site request refused")


class ToggleAuthorizationHandler(_SameSiteOnly, _NativeToggleHandler):
    async def get(self, slug):
        self._check_same_site()
        return await super().get(slug)


class DiscardHandler(_SameSiteOnly, _NativeDiscardHandler):
    async def get(self, user_name):
        self._check_same_site()
        return await super().get(user_name)


_REPLACED = {
    r"/login": LoginHandler,
    r"/signup": SignUpHandler,
    r"/authorize/([^/]*)": ToggleAuthorizationHandler,
    r"/discard/([^/]*)": DiscardHandler,
}


class IdspNativeAuthenticator(NativeAuthenticator):
    """NativeAuthenticator that bootstraps the first admin account on first start."""

    initial_admin_password_env = Unicode(ADMIN_PASSWORD_ENV, config=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._bootstrap_admins()

    async def authenticate(self, handler, data):
        """NativeAuthenticator's check (approved, password, lockout, 2FA) with the bcrypt
        comparison in a worker thread: it costs a quarter second or more of CPU by design,
        and on the event loop it would hold up every other request to the hub meanwhile."""
        username = self.normalize_username(data["username"])
        user = self.get_user(username)
        if not user:
            return None
        if self.allowed_failed_logins and self.is_blocked(username):
            return None
        stored = bytes(user.password)  # read here: ORM objects stay on the event loop's thread
        valid = await asyncio.to_thread(bcrypt.checkpw, data["password"].encode(), stored)
        if valid and user.is_authorized and (not user.has_2fa or user.is_valid_token(data.get("2fa"))):
            self.successful_login(username)
            return username
        self.add_login_attempt(username)
        return None

    def get_handlers(self, app):
        return [(path, _REPLACED.get(path, handler)) for path, handler in super().get_handlers(app)]

    def _bootstrap_admins(self) -> None:
        password = os.environ.pop(self.initial_admin_password_env, "")
        for name in sorted(self.admin_users):
            if self.user_exists(name):
                continue
            if not password:
                self.log.warning("admin %s has no account yet and no initial password", name)
                continue
            if not self.is_password_strong(password):
                raise SystemExit(f"the initial password of admin {name!r} is too weak")
            info = self.create_user(name, password)
            if info is None:
                raise SystemExit(f"could not create the admin account {name!r}")
            self.log.info("created the first admin account %s", name)
