"""The platform service's web pages: one Dutch layout (header, navigation, main, footer) for
every page, its templates and its style sheets.

Rule: every page is rendered from a template under ``templates/`` by Jinja2 with autoescape
on, so a value from a case folder or a request is text unless a template marks it safe;
nothing builds HTML by string formatting. Pages carry a strict Content-Security-Policy (no
inline script or style: styles come from ``<prefix>static/``), and the user shown in the
header is the one the hub proved, never a name from the request.

A page handler mixes in :class:`PageMixin` beside the service's own handler base and calls
``self.send_page("name.html", title=..., active=..., **context)``; templates extend
``base.html`` and fill ``{% block content %}``. The NL Design System component CSS
(``@utrecht/component-library-css``, EUPL-1.2, installed by ``npm ci``) is served from the
checkout's ``node_modules`` when it is there; the platform's own ``idsp.css`` sets the
Rijkshuisstijl-like theme (its design tokens) and the layout, and carries the page alone
where the component CSS is absent (an installed wheel without ``node_modules``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from tornado import web

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
# From a checkout (scripts/setup.sh runs `npm ci`); platform/idsp/service -> repo root.
NLDS_DIST = HERE.parents[2] / "node_modules" / "@utrecht" / "component-library-css" / "dist"
NLDS_FILE = "index.css"

# No inline script or style anywhere; scripts (the review page's signing code) and styles
# come from the service's own static folder; fetch() only to the service itself.
CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)

PLATFORM_NAME = "IDSP – Inspecties-DataSciencePlatform"


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str
    href: str


def hub_root(prefix: str) -> str:
    """The hub's base URL from the service's prefix (``/x/services/idsp/`` -> ``/x/``)."""
    at = prefix.rfind("services/")
    return prefix[:at] if at >= 0 else "/"


def navigation(prefix: str) -> list[NavItem]:
    """The header's links, the same on every page; ``active`` names the current one."""
    root = hub_root(prefix)
    return [
        NavItem("start", "Start", prefix),
        NavItem("zaken", "Mijn zaken", prefix + "cases/"),
        NavItem("review", "Te beoordelen", prefix + "review/"),
        NavItem("mlflow", "MLflow", root + "services/mlflow/"),
        NavItem("hub", "Hub", root + "hub/home"),
    ]


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,  # a misspelt name in a template fails the test, not the page
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def nlds_available() -> bool:
    return (NLDS_DIST / NLDS_FILE).is_file()


def render(
    template: str,
    *,
    user: dict[str, Any],
    prefix: str,
    title: str,
    active: str = "",
    **context: Any,
) -> str:
    """One page as HTML. ``user`` is the hub's model of the signed-in user."""
    return environment().get_template(template).render(
        platform_name=PLATFORM_NAME,
        page_title=title,
        active=active,
        nav=navigation(prefix),
        prefix=prefix,
        hub=hub_root(prefix),
        user_name=user["name"],
        is_admin=bool(user.get("admin")),
        nlds=nlds_available(),
        **context,
    )


class PageMixin:
    """For tornado handlers that answer with a page (mix in before the service's handler
    base): the CSP and other headers, ``send_page`` and a Dutch error page."""

    service: Any

    def set_default_headers(self) -> None:
        h: Any = self
        h.set_header("X-Content-Type-Options", "nosniff")
        h.set_header("Referrer-Policy", "same-origin")
        h.set_header("Content-Security-Policy", CSP)
        h.set_header("Cache-Control", "no-store")

    def send_page(self, template: str, *, title: str, active: str = "", **context: Any) -> None:
        h: Any = self
        html = render(
            template,
            user=h.current_user,
            prefix=h.service.prefix,
            title=title,
            active=active,
            xsrf_form_html=Markup(h.xsrf_form_html()),
            **context,
        )
        h.set_header("Content-Type", "text/html; charset=utf-8")
        h.finish(html)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        h: Any = self
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "log_message", None) if isinstance(exc, web.HTTPError) else None
        if message and getattr(exc, "args", None):
            try:
                message = message % exc.args
            except (TypeError, ValueError):
                pass
        html = environment().get_template("error.html").render(
            platform_name=PLATFORM_NAME,
            page_title=f"Fout {status_code}",
            status=status_code,
            message=message or ERRORS.get(status_code, "Er ging iets mis."),
            prefix=h.service.prefix,
            hub=hub_root(h.service.prefix),
            nlds=nlds_available(),
        )
        h.set_header("Content-Type", "text/html; charset=utf-8")
        h.finish(html)


ERRORS = {
    401: "U bent niet ingelogd. Log in via de hub.",
    403: "U hebt geen toegang tot deze pagina.",
    404: "Deze pagina bestaat niet.",
    500: "Er ging iets mis in de platformdienst; de beheerder kan het logboek van de dienst bekijken.",
}


class _Static(web.StaticFileHandler):
    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", CSP)

    def set_extra_headers(self, path: str) -> None:
        # Versioned by the ?v= that tornado's static_url adds; an hour is enough either way.
        self.set_header("Cache-Control", "public, max-age=3600")


def static_routes(prefix: str) -> list[tuple]:
    """``<prefix>static/…`` (the platform's own files) and ``<prefix>static/nlds/…`` (the
    NL Design System component CSS from ``node_modules``, when installed)."""
    routes: list[tuple] = []
    if nlds_available():
        routes.append((prefix + r"static/nlds/(index\.css)", _Static, {"path": str(NLDS_DIST)}))
    routes.append((prefix + r"static/(.+\.(?:css|js|svg|png))", _Static, {"path": str(STATIC)}))
    return routes
