"""The review API of the platform service: the reviewer registry and signed decisions.

Rule: the actor is the hub user ``HubOAuth`` proved (token, or cookie with JupyterHub's XSRF
token: a cookie POST without it has no identity and gets 401); a user enrols only their own
key, only a hub admin approves an enrolment, and a decision is accepted only as
``review_decide`` checks it. A case that is not yours and one that does not exist get the
same answer. Refusals are JSON ``{"error", "fix"}`` in Dutch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from idsp.errors import UserError
from idsp.service.app import ApiError, Service, _Api
from idsp.service.cases import IndexUnreadable
from idsp.service.registry import RegistryRefused
from idsp.service.review_decide import ReviewParts, open_case, review_parts


class _ReviewApi(_Api):
    @property
    def parts(self) -> ReviewParts:
        return review_parts(self.service)

    async def call(self, fn, *args, **kw) -> Any:
        try:
            return await self.service.run(fn, *args, **kw)
        except RegistryRefused as exc:
            raise ApiError(exc.status, exc.what, fix=exc.fix or "") from None
        except IndexUnreadable as exc:
            raise ApiError(503, exc.what) from None
        except UserError as exc:
            raise ApiError(409, exc.what, fix=exc.fix or "") from None

    def admin(self) -> dict[str, Any]:
        user = self.actor()
        if not user.get("admin"):
            raise ApiError(403, "alleen een beheerder van de hub keurt aanmeldingen van beoordelaars goed")
        return user

    async def case_path(self, user: dict[str, Any], case_id: str) -> Path:
        try:
            mine = await self.service.run(self.service.cases.of, user["name"], user.get("groups") or [])
        except IndexUnreadable as exc:
            raise ApiError(503, exc.what) from None
        found = next((c for c in mine if c["id"] == case_id), None)
        if found is None:  # the same for a case that does not exist: no probing for ids
            raise ApiError(403, f"zaak {case_id!r} is niet een van uw zaken")
        return Path(found["path"])


class Enrol(_ReviewApi):
    async def post(self) -> None:
        user = self.actor()
        body = self.json_body()
        unknown = sorted(set(body) - {"public_key", "source"})
        if unknown:
            raise ApiError(400, f"onbekende velden: {', '.join(unknown)}; stuur public_key en source")
        entry = await self.call(self.parts.registry.enrol, user["name"], body.get("public_key"),
                                body.get("source", "webcrypto"))
        self.send(entry, status=201)


class Reviewers(_ReviewApi):
    async def get(self) -> None:
        user = self.actor()
        if user.get("admin"):
            self.send({"reviewers": await self.call(self.parts.registry.all)})
            return
        own = await self.call(self.parts.registry.entry, user["name"])
        self.send({"reviewers": [own] if own else []})


class ApproveReviewer(_ReviewApi):
    async def post(self, name: str) -> None:
        admin = self.admin()
        body = self.json_body()
        unknown = sorted(set(body) - {"roles", "key_id"})
        if unknown:
            raise ApiError(400, f"onbekende velden: {', '.join(unknown)}; een beheerder kiest alleen rollen "
                                "(en welke wachtende sleutel), nooit een sleutel")
        entry = await self.call(self.parts.registry.approve, admin["name"], name, body.get("roles"),
                                body.get("key_id"))
        self.send(entry)


class RevokeKey(_ReviewApi):
    async def post(self, name: str, kid: str) -> None:
        user = self.actor()
        body = self.json_body()
        entry = await self.call(self.parts.registry.revoke, user["name"], name, kid,
                                admin=bool(user.get("admin")), because=str(body.get("reason") or ""))
        self.send(entry)


class RegistryForGate(_ReviewApi):
    """Public keys and roles only (what every user server's gate needs), no dates of others."""

    async def get(self) -> None:
        self.actor()
        self.send(await self.call(self.parts.registry.trust))


class DecisionPayload(_ReviewApi):
    async def get(self, case_id: str) -> None:
        user = self.actor()
        path = await self.case_path(user, case_id)
        args = {k: self.get_argument(k, None) for k in ("kind", "purpose", "role", "public_key")}
        comment = self.get_argument("comment", "")
        if len(comment) > 4000:
            raise ApiError(400, "de reden is langer dan 4000 tekens")

        def build() -> dict[str, Any]:
            return self.parts.decisions.payload(
                open_case(path), user["name"], kind=args["kind"] or "approve", purpose=args["purpose"] or "use",
                role=args["role"], public_key=args["public_key"], comment=comment)

        payload = await self.call(build)
        from legal_ethics.canonical import canonical_json

        self.send({"payload": payload, "canonical": canonical_json(payload).decode("utf-8")})


class Decide(_ReviewApi):
    async def get(self, case_id: str) -> None:
        """The decisions the service recorded for one of my cases (the gate merges them)."""
        user = self.actor()
        await self.case_path(user, case_id)
        self.send({"decisions": await self.call(self.parts.decisions.config.decisions_for, case_id)})

    async def post(self, case_id: str) -> None:
        user = self.actor()
        path = await self.case_path(user, case_id)
        body = self.json_body()
        result = await self.call(lambda: self.parts.decisions.decide(open_case(path), user["name"], body))
        self.send(result, status=201)


def routes(prefix: str, service: Service) -> list[tuple]:
    kw = {"service": service}
    review_parts(service)
    return [
        (prefix + "api/reviewers", Reviewers, kw),
        (prefix + "api/reviewers/enrol", Enrol, kw),
        (prefix + "api/reviewers/registry", RegistryForGate, kw),
        (prefix + r"api/reviewers/([^/]+)/approve", ApproveReviewer, kw),
        (prefix + r"api/reviewers/([^/]+)/keys/([^/]+)/revoke", RevokeKey, kw),
        (prefix + r"api/cases/([^/]+)/decisions/payload", DecisionPayload, kw),
        (prefix + r"api/cases/([^/]+)/decisions", Decide, kw),
    ]


def all_routes(service: Service) -> list[tuple]:
    """The review API and the review pages, for ``app.make_app(extra_routes=...)``."""
    from idsp.service import review_pages

    return [*routes(service.prefix, service), *review_pages.routes(service.prefix, service)]
