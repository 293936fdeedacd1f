"""The case pages of the platform service (Dutch): "Mijn zaken" with the project lead's form
"Nieuwe zaak", and one case with its people, where its owners add and remove members.

Rule: the pages write only through the functions behind the case API (``case_api.make_case``,
``add_member``, ``remove_member``), so a form does exactly what ``POST api/cases`` and the
members API do, with the same checks, agent, MLflow and audit. Every write is a plain HTML
form POST carrying JupyterHub's ``_xsrf`` token: a POST without it has no hub identity and
is refused. A case page is shown to its owners and members only; a case of others and one
that does not exist get the same answer. Refusals are shown on the form, in Dutch, with the
field named; the API's own words follow under "Technische toelichting".
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import quote, urlencode

from tornado import web

from casuistiek import KITS
from idsp.case_file import INSPECTORATES, SLUG_RE, ZAAKNUMMER_RE
from idsp.defaults import GENERIC_CASE_TYPE
from idsp.hub.accounts import USERNAME_RE
from idsp.hub.case_registry import people, role_of
from idsp.service.app import ApiError, PageHandler, Service
from idsp.service.case_api import add_member, is_lead, make_case, remove_member
from idsp.service.cases import IndexUnreadable
from idsp.service.pages import hub_root

CASE_TYPES = (GENERIC_CASE_TYPE, *sorted(KITS))
TYPE_LABELS = {GENERIC_CASE_TYPE: "Algemeen", "ce_markering": "CE-markering"}
ROLE_NL = {"owner": "eigenaar", "member": "lid"}
TITLE_MAX = 200
NOT_YOURS = "Zaak {} is niet een van uw zaken, of bestaat niet."
# Where an API refusal belongs on the form: the first field its words name.
FIELD_WORDS = (("zaaknummer", "zaaknummer"), ("inspectorates", "inspectorates"),
               ("case_type", "case_type"), ("--type", "case_type"), ("title", "title"),
               ("case_id", "case_id"), ("a case", "case_id"), ("een zaak", "case_id"))  # fmt: skip


@dataclasses.dataclass
class Problem:
    """A refusal shown on a form: the Dutch text, the field it belongs to, the API's words."""

    text: str
    field: str = ""
    detail: str = ""
    fields: dict[str, str] = dataclasses.field(default_factory=dict)


def dutch_part(message: str) -> str:
    """The Dutch half of the API's "Nederlands / English" messages (the whole if none)."""
    return message.split(" / ")[0] if " / " in message else message


def check_new_case(form: dict[str, str]) -> dict[str, str]:
    """The form's own checks, in Dutch, by field (empty when the form is complete)."""
    errors = {}
    if not SLUG_RE.match(form["case_id"]):
        errors["case_id"] = ("Zaak-id: gebruik 3 tot 64 kleine letters, cijfers en streepjes, "
                             "beginnend met een letter (bijvoorbeeld bruggen-2026).")  # fmt: skip
    if not form["title"].strip():
        errors["title"] = "Titel: vul een korte titel in."
    elif len(form["title"]) > TITLE_MAX:
        errors["title"] = f"Titel: hoogstens {TITLE_MAX} tekens."
    if not ZAAKNUMMER_RE.match(form["zaaknummer"]):
        errors["zaaknummer"] = (
            "Zaaknummer: de vorm is CODE-JJJJ-NNNNNN, bijvoorbeeld ILT-2026-004512."
        )
    if form["case_type"] not in CASE_TYPES:
        errors["case_type"] = "Soort zaak: kies een van de soorten uit de lijst."
    if form["inspectorates"] not in INSPECTORATES:
        errors["inspectorates"] = "Inspectie: kies een inspectie uit de lijst."
    return errors


def refusal(exc: ApiError) -> Problem:
    """An API refusal as the form shows it: Dutch where the API has Dutch words."""
    words = exc.message
    where = next((f for w, f in FIELD_WORDS if w in words), "")
    if exc.status_code == 403:
        text = dutch_part(words)
    elif exc.status_code == 409:
        text = "Zaak-id: " + dutch_part(words) + "."
    elif exc.status_code == 503:
        text = "Het maken van zaken werkt nu niet op deze hub; de beheerder is gewaarschuwd."
    else:
        label = {"case_id": "Zaak-id", "title": "Titel", "zaaknummer": "Zaaknummer",
                 "case_type": "Soort zaak", "inspectorates": "Inspectie"}.get(where)  # fmt: skip
        text = (
            f"{label}: de platformdienst weigert dit antwoord."
            if label
            else "De platformdienst weigert de zaak."
        )
    detail = words + (f" ({exc.fix})" if exc.fix else "")
    return Problem(text, where, detail)


class _CasePage(PageHandler):
    def page(self, template: str, title: str, status: int = 200, **context: Any) -> None:
        self.set_status(status)
        self.send_page(template, title=title, active="zaken", type_labels=TYPE_LABELS,
                       role_nl=ROLE_NL, **context)  # fmt: skip

    def to_case(self, case_id: str, **message: str) -> None:
        query = ("?" + urlencode(message)) if message else ""
        self.redirect(f"{self.service.prefix}cases/{quote(case_id)}{query}", status=303)


class MyCasesPage(_CasePage):
    """``<prefix>cases/``: my cases, and for a project lead the form "Nieuwe zaak"."""

    @web.authenticated
    async def get(self) -> None:
        await self.show({})

    async def show(
        self, form: dict[str, str], problem: Problem | None = None, status: int = 200
    ) -> None:
        user = self.current_user
        try:
            cases = await self.service.run(
                self.service.cases.of, user["name"], user.get("groups") or []
            )
            unreadable = ""
        except IndexUnreadable:
            cases, unreadable = (
                [],
                "De zakenlijst is nu niet leesbaar voor de platformdienst; de beheerder is gewaarschuwd.",
            )
        lead = getattr(self.service, "case_maker", None) is not None and is_lead(self.service, user)
        self.page("cases.html", "Mijn zaken", status=status, cases=cases, unreadable=unreadable, lead=lead,
                  form={"case_type": GENERIC_CASE_TYPE, "inspectorates": "ILT", **form}, problem=problem,
                  case_types=CASE_TYPES, inspectorates=INSPECTORATES)  # fmt: skip

    @web.authenticated
    async def post(self) -> None:
        user = self.current_user
        names = ("case_id", "title", "zaaknummer", "case_type", "inspectorates")
        form = {n: self.get_body_argument(n, "").strip() for n in names}
        if getattr(self.service, "case_maker", None) is None or not is_lead(self.service, user):
            problem = Problem("Alleen projectleiders maken zaken. Vraag de beheerder u aan de groep "
                              "van projectleiders toe te voegen.")  # fmt: skip
            return await self.show(form, problem, status=403)
        errors = check_new_case(form)
        if errors:
            first = next(iter(errors))
            return await self.show(form, Problem(errors[first], first, fields=errors), status=400)
        data = {k: form[k] for k in ("title", "zaaknummer", "case_type", "inspectorates")}
        try:
            await make_case(self.service, user, form["case_id"], data)
        except ApiError as exc:
            problem = refusal(exc)
            if problem.field:
                problem.fields = {problem.field: problem.text}
            return await self.show(form, problem, status=exc.status_code)
        self.to_case(
            form["case_id"], melding=f"Zaak {form['case_id']} is gemaakt. U bent de eigenaar."
        )


class CasePage(_CasePage):
    """``<prefix>cases/<id>``: the case and its people; owners add and remove members."""

    async def mine(self, case_id: str) -> tuple[dict[str, Any], str]:
        name = self.current_user["name"]
        case = await self.service.run(self.service.cases.registry.get, case_id)
        role = role_of(case, name) if case and not case.get("status") else None
        if role is None:  # the same answer for a case of others and one that does not exist
            raise web.HTTPError(404, "%s", NOT_YOURS.format(case_id))
        return case, role

    @web.authenticated
    async def get(self, case_id: str) -> None:
        await self.show(case_id, message=self.get_argument("melding", ""))

    async def show(self, case_id: str, *, message: str = "", problem: Problem | None = None,
                   status: int = 200, confirm: str = "", member: str = "") -> None:  # fmt: skip
        case, role = await self.mine(case_id)
        name = self.current_user["name"]
        owners = sorted(case.get("owners") or [])
        rows = [{"name": p, "role": "owner" if p in owners else "member"} for p in people(case)]
        experiment = case.get("experiment_id")
        self.page("case.html", f"Zaak {case_id}", status=status, case=case, case_id=case_id, role=role,
                  rows=rows, message=message, problem=problem, confirm=confirm, member=member,
                  only_owner=owners == [name],
                  folder=f"{hub_root(self.service.prefix)}user/{quote(name)}/lab/tree/cases/{quote(case_id)}",
                  mlflow=f"{hub_root(self.service.prefix)}services/mlflow/#/experiments/{quote(str(experiment))}"
                  if experiment else "")  # fmt: skip

    @web.authenticated
    async def post(self, case_id: str) -> None:
        case, role = await self.mine(case_id)
        name = self.current_user["name"]
        action = self.get_body_argument("actie", "")
        who = self.get_body_argument("gebruiker", "").strip()
        if role != "owner":
            problem = Problem("Alleen een eigenaar van de zaak voegt leden toe of verwijdert ze.")
            return await self.show(case_id, problem=problem, status=403)
        if action == "toevoegen":
            if not USERNAME_RE.match(who):
                problem = Problem("Gebruikersnaam: vul de naam in waarmee het lid op de hub inlogt "
                                  "(kleine letters, cijfers, streepjes).", "gebruiker")  # fmt: skip
                return await self.show(case_id, problem=problem, status=400, member=who)
            if who in people(case):
                return self.to_case(case_id, melding=f"{who} is al lid van deze zaak.")
            try:
                await add_member(self.service, name, case_id, who)
            except ApiError as exc:
                return await self.member_refused(case_id, exc, who)
            return self.to_case(
                case_id, melding=f"{who} is toegevoegd en kan de zaakmap nu openen."
            )
        if action == "verwijderen":  # the first step: the page asks to confirm
            return await self.show(case_id, confirm=who if who in people(case) else "")
        if action == "bevestig-verwijderen":
            try:
                await remove_member(self.service, name, case_id, who)
            except ApiError as exc:
                return await self.member_refused(case_id, exc, who)
            return self.to_case(
                case_id, melding=f"{who} is verwijderd; de toegang is nu ingetrokken."
            )
        raise web.HTTPError(400, "%s", "Onbekende handeling op deze pagina.")

    async def member_refused(self, case_id: str, exc: ApiError, who: str) -> None:
        words = exc.message
        if "geen hub-gebruiker" in words:
            text = f"Gebruikersnaam: er is geen hub-gebruiker {who!r}. Het lid meldt zich eerst aan en de beheerder keurt dat goed."
        elif "only owner" in words:
            text = f"{who} is de enige eigenaar; voeg eerst een andere eigenaar toe."
        elif exc.status_code == 503:
            text = "Leden toevoegen of verwijderen werkt nu niet op deze hub; de beheerder is gewaarschuwd."
        else:
            text = "De platformdienst weigert dit: " + dutch_part(words)
        detail = words + (f" ({exc.fix})" if exc.fix else "")
        await self.show(
            case_id, problem=Problem(text, "gebruiker", detail), status=exc.status_code, member=who
        )


def routes(prefix: str, service: Service) -> list[tuple]:
    kw = {"service": service}
    return [
        (prefix + "cases/", MyCasesPage, kw),
        (prefix + r"cases/([a-z][a-z0-9-]{1,62}[a-z0-9])", CasePage, kw),
    ]
