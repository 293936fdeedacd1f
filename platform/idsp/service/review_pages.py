"""The review pages of the platform service (Dutch): enrol, "Te beoordelen", one checklist,
its evidence files, and the admin's page for enrolments.

Rule: pages read; the only writes are the admin's approval form (a POST with JupyterHub's XSRF
token, through ``registry.approve``) and what the page's script posts to the review API. A
page shows a case only to its members (the same answer for a case that does not exist), and
an evidence file only if it lies inside the case folder; it is served with its own content
type, ``nosniff`` and a sandboxing CSP (a member's HTML or SVG runs no script on the
service's origin). Signing happens in the browser with the reviewer's non-extractable key
(``static/review.js``); the service never holds a reviewer's private key.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

from tornado import web

from idsp.service.app import Service, _Handler
from idsp.service.cases import IndexUnreadable
from idsp.service.pages import PageMixin
from idsp.service.registry import RegistryRefused
from idsp.service.review_decide import PURPOSE_NL, open_case, review_parts
from idsp.service.review_view import dutch, inside, queue_entry, review

FILE_MAX = 50 * 1024 * 1024  # evidence served by the page (a report, a model card, a PDF)
SAFE_TYPES = {".json": "application/json", ".md": "text/plain", ".txt": "text/plain", ".csv": "text/plain",
              ".yaml": "text/plain", ".yml": "text/plain", ".png": "image/png", ".jpg": "image/jpeg",
              ".jpeg": "image/jpeg", ".gif": "image/gif", ".svg": "image/svg+xml", ".pdf": "application/pdf",
              ".html": "text/html", ".htm": "text/html"}
EVIDENCE_CSP = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"
ROLE_CHOICES = ("jurist", "privacy-officer", "ethicus", "gemandateerd-verantwoordelijke")


class _Page(PageMixin, _Handler):
    def get_current_user(self):
        if self._refused_model:
            raise web.HTTPError(403, "%s", f"{self._refused_model.get('name')} mag de platformdienst niet gebruiken")
        return super().get_current_user()

    @property
    def parts(self):
        return review_parts(self.service)

    def page(self, template: str, title: str, **context: Any) -> None:
        token = self.xsrf_token
        self.send_page(template, title=title, active="review",
                       xsrf_token=token.decode() if isinstance(token, bytes) else token, **context)

    async def my_case(self, case_id: str):
        user = self.current_user
        try:
            mine = await self.service.run(self.service.cases.of, user["name"], user.get("groups") or [])
        except IndexUnreadable:
            raise web.HTTPError(503, "%s", "De zakenlijst is nu niet leesbaar voor de platformdienst.") from None
        found = next((c for c in mine if c["id"] == case_id), None)
        if found is None:
            raise web.HTTPError(404, "%s", f"Zaak {case_id} is niet een van uw zaken.")
        return await self.service.run(open_case, Path(found["path"]))


class Queue(_Page):
    @web.authenticated
    async def get(self) -> None:
        user = self.current_user
        name = user["name"]
        roles = await self.service.run(self.parts.registry.roles_of, name)
        entry = await self.service.run(self.parts.registry.entry, name)
        try:
            cases = await self.service.run(self.service.cases.of, name, user.get("groups") or [])
        except IndexUnreadable:
            cases = []
        config = self.parts.decisions.config

        def collect() -> list[dict[str, Any]]:
            rows = []
            for c in cases:
                try:
                    row = queue_entry(open_case(Path(c["path"])), config, roles, name)
                except (RegistryRefused, OSError):
                    continue  # a case the service cannot read is shown on the start page
                if row:
                    rows.append(row)
            return sorted(rows, key=lambda r: r["since"])

        rows = await self.service.run(collect) if roles else []
        self.page("review_queue.html", "Te beoordelen", rows=rows, roles=roles, entry=entry)


class Enrol(_Page):
    @web.authenticated
    async def get(self) -> None:
        entry = await self.service.run(self.parts.registry.entry, self.current_user["name"])
        self.page("review_enrol.html", "Aanmelden als beoordelaar", entry=entry)


class Admin(_Page):
    @web.authenticated
    async def get(self) -> None:
        self._admin_only()
        reviewers = await self.service.run(self.parts.registry.all)
        self.page("review_admin.html", "Beoordelaars beheren", reviewers=reviewers, role_choices=ROLE_CHOICES,
                  message=self.get_argument("melding", ""))

    @web.authenticated
    async def post(self) -> None:
        admin = self._admin_only()
        name = self.get_body_argument("name")
        roles = self.get_body_arguments("roles")
        try:
            await self.service.run(self.parts.registry.approve, admin["name"], name, roles,
                                   self.get_body_argument("key_id", None))
            message = f"{name} is goedgekeurd als beoordelaar."
        except RegistryRefused as exc:
            message = f"Niet gelukt: {exc.what}"
        self.redirect(self.service.prefix + "review/admin?" + _query(melding=message))

    def _admin_only(self) -> dict[str, Any]:
        user = self.current_user
        if not user.get("admin"):
            raise web.HTTPError(403, "%s", "Alleen een beheerder van de hub beheert beoordelaars.")
        return user


def _query(**kw: str) -> str:
    from urllib.parse import urlencode

    return urlencode(kw)


class ReviewCase(_Page):
    @web.authenticated
    async def get(self, case_id: str, purpose: str) -> None:
        if purpose not in PURPOSE_NL:
            raise web.HTTPError(404, "%s", "Kies ontwikkeling (development) of gebruik (use).")
        case = await self.my_case(case_id)
        name = self.current_user["name"]
        parts = self.parts
        try:
            data = await self.service.run(review, case, parts.decisions.config, parts.decisions.log.path)
        except RegistryRefused as exc:
            raise web.HTTPError(409, "%s", exc.what) from None
        roles = await self.service.run(parts.registry.roles_of, name)
        entry = await self.service.run(parts.registry.entry, name)
        submitted = data.view.st.submission
        mine = [r for r in roles if r in {x["id"] for x in data.required}]
        self.page("review_case.html", f"Beoordelen: {case_id}", r=data, purpose=purpose,
                  purpose_nl=PURPOSE_NL[purpose], my_roles=mine, entry=entry,
                  matches=bool(submitted and submitted.purpose == purpose), role_label=_role_label, dutch=dutch)


def _role_label(role: str) -> str:
    from legal_ethics.reviewers import role_label

    return role_label(role)


class EvidenceFile(_Page):
    @web.authenticated
    async def get(self, case_id: str, path: str) -> None:
        case = await self.my_case(case_id)
        file = inside(case, path)
        if file is None:
            raise web.HTTPError(404, "%s", "Dit bestand ligt niet in de zaakmap of bestaat niet.")
        size = file.stat().st_size
        if size > FILE_MAX:
            raise web.HTTPError(413, "%s", "Dit bestand is te groot om hier te tonen; open het in JupyterLab.")
        ctype = SAFE_TYPES.get(file.suffix.lower()) or mimetypes.guess_type(file.name)[0] or ""
        if ctype not in SAFE_TYPES.values():
            ctype = "application/octet-stream"
            self.set_header("Content-Disposition", f'attachment; filename="{file.name}"')
        self.set_header("Content-Type", ctype + ("; charset=utf-8" if ctype.startswith("text/") else ""))
        self.set_header("Content-Security-Policy", EVIDENCE_CSP)
        self.set_header("Cache-Control", "private, no-store")
        self.finish(await self.service.run(file.read_bytes))


def routes(prefix: str, service: Service) -> list[tuple]:
    kw = {"service": service}
    p = prefix + "review/"
    return [
        (p, Queue, kw),
        (p + "enrol", Enrol, kw),
        (p + "admin", Admin, kw),
        (p + r"([a-z][a-z0-9-]{2,63})/file/(.+)", EvidenceFile, kw),
        (p + r"([a-z][a-z0-9-]{2,63})/(development|use|[a-z]+)", ReviewCase, kw),
    ]
