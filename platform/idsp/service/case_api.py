"""Cases and members through the platform service: make a case, list mine, add and remove members.

Rule: the actor is the hub user ``HubOAuth`` proved; only a member of the project-lead hub
group (``hub.project_lead_group``, default ``projectleiders``) or a hub admin makes a case,
and only a case's owners see and change its members (a case that is not theirs and one that
does not exist get the same answer). The service's registry records the change first, the
root case agent applies it to the folders (ACLs, at once, for running servers too), MLflow
follows (the service makes each case's experiment and grants EDIT to its people), and every
change is an audit event with the proved actor (``case.created``, ``member.added``,
``member.removed``). Errors are ``{"error", "fix"}``, in Dutch and English where a user reads them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from idsp.case_file import SLUG_RE
from idsp.hub.accounts import USERNAME_RE
from idsp.hub.case_agent import call as agent_call
from idsp.hub.case_registry import now, people, role_of
from idsp.service.app import ApiError, Service, _Api

log = logging.getLogger("idsp.service.cases")
DEFAULT_LEAD_GROUP = "projectleiders"
CASE_FIELDS = frozenset({"case_id", "data"})


@dataclass
class CaseMaker:
    """What the case routes need besides the service: the agent, the lead group, MLflow."""

    agent_socket: Path | None
    lead_group: str = DEFAULT_LEAD_GROUP
    experiments: Any = None  # idsp.service.case_mlflow.CaseExperiments, or None without MLflow
    hub_api: str = ""
    hub_token: str = ""
    # case making takes seconds: never on the service's one audit worker
    pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(2, thread_name_prefix="idsp-cases")
    )
    background: set = field(default_factory=set)  # MLflow grants after the answer (kept referenced)

    async def agent(self, op: str, **args: Any) -> dict[str, Any]:
        sock = self.agent_socket
        if sock is None:
            raise ApiError(
                503, "this platform service has no case agent (it runs without `idsp hub up`)"
            )
        loop = asyncio.get_running_loop()
        try:
            answer = await loop.run_in_executor(
                self.pool, lambda: agent_call(sock, {"op": op, **args})
            )
        except OSError as exc:
            raise ApiError(503, f"the platform's case agent does not answer ({exc})",
                           fix="The platform admin checks `idsp hub up` and its log") from None  # fmt: skip
        if not answer.get("ok"):
            status = {"bad": 400, "refused": 400}.get(answer.get("kind", ""), 500)
            raise ApiError(
                status, answer.get("error", "the case agent refused"), fix=answer.get("fix", "")
            )
        return answer["result"]

    async def hub_user_exists(self, name: str) -> bool:
        import httpx

        async with httpx.AsyncClient(timeout=10) as http:
            r = await http.get(f"{self.hub_api.rstrip('/')}/users/{name}",
                               headers={"Authorization": f"token {self.hub_token}"})  # fmt: skip
        if r.status_code == 404:
            return False
        if r.status_code != 200:
            raise ApiError(503, f"the hub did not say whether {name!r} is a hub user ({r.status_code})",
                           fix="The platform admin checks the service's role (read:users:name)")  # fmt: skip
        return True


def _maker(service: Service) -> CaseMaker:
    maker = getattr(service, "case_maker", None)
    if maker is None:
        raise ApiError(503, "making cases is not set up in this platform service")
    return maker


def _registry(service: Service):
    return service.cases.registry


class MyCases(_Api):
    async def get(self) -> None:
        user = self.actor()
        self.send(
            {
                "cases": await self.service.run(
                    self.service.cases.of, user["name"], user.get("groups") or []
                )
            }
        )

    async def post(self) -> None:
        user = self.actor()
        require_lead(self.service, user)
        body = self.json_body()
        unknown = sorted(set(body) - CASE_FIELDS)
        if unknown:
            raise ApiError(
                400, f"unknown field(s) {', '.join(unknown)}; a case has case_id and data"
            )
        made = await make_case(self.service, user, body.get("case_id"), body.get("data") or {})
        self.send(made, status=201)


def is_lead(service: Service, user: dict[str, Any]) -> bool:
    """Whether the hub's model of ``user`` may make cases (the lead group, or a hub admin)."""
    return _maker(service).lead_group in (user.get("groups") or []) or bool(user.get("admin"))


def require_lead(service: Service, user: dict[str, Any]) -> None:
    if not is_lead(service, user):
        group = _maker(service).lead_group
        raise ApiError(
            403,
            f"alleen projectleiders maken zaken: u zit niet in de hub-groep {group!r} / "
            f"only project leads make cases: you are not in the hub group {group!r}",
            fix=f"Vraag de beheerder u aan de groep {group!r} toe te voegen / "
            f"ask the platform admin to add you to the group {group!r}",
        )


async def make_case(
    service: Service, user: dict[str, Any], case_id: Any, data: Any
) -> dict[str, Any]:
    """Make a case for the hub user ``user`` (what ``POST api/cases`` and the page's form
    do): reserve the id, let the agent render it, make its experiment, record it, audit it.
    Raises ``ApiError`` (the refusal, in the API's words) and leaves no reservation behind."""
    require_lead(service, user)
    maker, name = _maker(service), user["name"]
    if not isinstance(case_id, str) or not SLUG_RE.match(case_id):
        raise ApiError(
            400,
            f"`case_id` {case_id!r} is not a case id: lower-case letters, digits and dashes, 3-64 long",
        )
    if not isinstance(data, dict):
        raise ApiError(
            400, '`data` must be an object of answers, e.g. {"zaaknummer": "ILT-2026-004512"}'
        )
    t0 = time.monotonic()
    await service.run(_reserve, _registry(service), case_id, name)
    # the experiment is made while the agent renders the case: neither waits for the other
    experiment_task = asyncio.ensure_future(_experiment(maker, case_id, name))
    try:
        t_agent = time.monotonic()
        made = await maker.agent("make_case", case_id=case_id, owner=name, data=data)
        t_agent = time.monotonic() - t_agent
    except BaseException:
        await service.run(_drop, _registry(service), case_id)
        await asyncio.gather(experiment_task, return_exceptions=True)  # recorded: a retry reuses it
        raise
    spec = await asyncio.get_running_loop().run_in_executor(maker.pool, _spec, Path(made["path"]))
    experiment, warnings = await experiment_task
    entry = await service.run(_finish, _registry(service), case_id, made["path"], spec, experiment)
    await service.run(
        service.log.append, "case.created", actor=name, case_id=case_id,
        data={"path": made["path"], "template_version": made["template_version"], "experiment_id": experiment},
    )  # fmt: skip
    return {**_shown(entry, name), "experiment_id": experiment, "template_version": made["template_version"],
            "steps": made["steps"], "warnings": warnings, "seconds": round(time.monotonic() - t0, 3),
            "agent_seconds": round(t_agent, 3)}  # fmt: skip


async def _experiment(maker: CaseMaker, case_id: str, owner: str) -> tuple[str | None, list[str]]:
    if maker.experiments is None:
        return None, []
    try:
        return await maker.experiments.create(case_id, [owner]), []
    except Exception as exc:  # noqa: BLE001 - the case stands; the owner's next spawn claims it
        log.exception("MLflow experiment of %s", case_id)
        return None, [f"the MLflow experiment was not made yet ({exc.__class__.__name__})"]


def _reserve(registry, case_id: str, name: str) -> None:
    with registry.changing() as cases:
        if case_id in cases:
            raise ApiError(409, f"er is al een zaak {case_id!r} / a case {case_id!r} already exists",
                           fix="Kies een andere naam / choose another case id")  # fmt: skip
        cases[case_id] = {"id": case_id, "owners": [name], "members": [], "created_by": name,
                          "created_at": now(), "origin": "service", "status": "making"}  # fmt: skip


def _drop(registry, case_id: str) -> None:
    with registry.changing() as cases:
        if cases.get(case_id, {}).get("status") == "making":
            del cases[case_id]


def _spec(path: Path) -> dict[str, Any]:
    with open(path / "case.yaml", "rb") as f:
        data = yaml.safe_load(f.read(256 * 1024)) or {}
    keep = ("title", "zaaknummer", "case_type", "inspectorates")
    return {k: data[k] for k in keep if isinstance(data, dict) and data.get(k) is not None}


def _finish(
    registry, case_id: str, path: str, spec: dict, experiment: str | None
) -> dict[str, Any]:
    with registry.changing() as cases:
        case = cases[case_id]
        case.update(spec, path=path, experiment_id=experiment)
        case.pop("status", None)
        return dict(case)


def _shown(case: dict[str, Any], user: str) -> dict[str, Any]:
    keep = ("id", "title", "zaaknummer", "case_type", "path")
    return {**{k: case[k] for k in keep if case.get(k) is not None}, "role": role_of(case, user)}


def owned_case(service: Service, name: str, case_id: str) -> dict[str, Any]:
    """The registry entry of ``case_id`` if ``name`` owns it; the one refusal otherwise
    (a case of others and one that does not exist get the same answer)."""
    case = _registry(service).get(case_id)
    if case is None or case.get("status") or role_of(case, name) != "owner":
        raise ApiError(
            403,
            f"zaak {case_id!r} is niet een van uw zaken als eigenaar / case {case_id!r} is not one of the cases you own",
            fix="`GET api/cases` lists yours; the case's owner adds members",
        )
    return case


async def add_member(service: Service, name: str, case_id: str, who: Any) -> dict[str, Any]:
    """The owner ``name`` adds the hub user ``who`` to ``case_id``: registry, the agent's
    grant (at once, running servers too), audit; MLflow follows in the background."""
    owned_case(service, name, case_id)
    if not isinstance(who, str) or not USERNAME_RE.match(who):
        raise ApiError(400, f'send {{"user": NAME}} with a hub user name; got {who!r:.200}')
    maker = _maker(service)
    if not await maker.hub_user_exists(who):
        raise ApiError(400, f"er is geen hub-gebruiker {who!r} / there is no hub user {who!r}",
                       fix="Check the name; the user signs up first and the admin approves them")  # fmt: skip
    t0 = time.monotonic()
    case = await service.run(_set_member, _registry(service), case_id, who, True)
    applied = await maker.agent("grant", case_id=case_id, user=who)
    seconds = round(time.monotonic() - t0, 3)
    await service.run(service.log.append, "member.added", actor=name, case_id=case_id,
                      data={"member": who})  # fmt: skip
    # MLflow after the folder access: its password hash costs a second, nobody waits for it
    task = asyncio.ensure_future(_mlflow(maker, "grant", case, who))
    maker.background.add(task)
    task.add_done_callback(maker.background.discard)
    return {"case_id": case_id, "added": who, "members": sorted(case.get("members") or []),
            "access_seconds": seconds, "applied": applied.get("account", False)}  # fmt: skip


async def remove_member(service: Service, name: str, case_id: str, member: str) -> dict[str, Any]:
    """The owner ``name`` removes ``member`` from ``case_id`` (never its only owner):
    registry, the agent's revoke (at once), MLflow, audit."""
    case = owned_case(service, name, case_id)
    if not USERNAME_RE.match(member or ""):
        raise ApiError(400, "name the member to remove: DELETE api/cases/<id>/members/<user>")
    if member not in people(case):
        raise ApiError(400, f"{member!r} is not a member of case {case_id!r}")
    if (case.get("owners") or []) == [member]:
        raise ApiError(400, f"{member!r} is the case's only owner", fix="Add another owner first")
    case = await service.run(_set_member, _registry(service), case_id, member, False)
    maker = _maker(service)
    await maker.agent("revoke", case_id=case_id, user=member)
    await _mlflow(maker, "revoke", case, member)
    await service.run(service.log.append, "member.removed", actor=name, case_id=case_id,
                      data={"member": member})  # fmt: skip
    return {"case_id": case_id, "removed": member, "members": sorted(case.get("members") or [])}


class Members(_Api):
    async def get(self, case_id: str, member: str = "") -> None:
        case = owned_case(self.service, self.actor()["name"], case_id)
        self.send({"case_id": case_id, "owners": sorted(case.get("owners") or []),
                   "members": sorted(case.get("members") or [])})  # fmt: skip

    async def post(self, case_id: str, member: str = "") -> None:
        name = self.actor()["name"]
        owned_case(self.service, name, case_id)
        body = self.json_body()
        if set(body) - {"user"} or not isinstance(body.get("user"), str):
            raise ApiError(400, f'send {{"user": NAME}} with a hub user name; got {body!r:.200}')
        self.send(await add_member(self.service, name, case_id, body["user"]), status=201)

    async def delete(self, case_id: str, member: str = "") -> None:
        name = self.actor()["name"]
        self.send(await remove_member(self.service, name, case_id, member))


async def _mlflow(maker: CaseMaker, how: str, case: dict[str, Any], who: str) -> None:
    experiment = case.get("experiment_id")
    if maker.experiments is None or not experiment:
        return
    try:
        await getattr(maker.experiments, how)(str(experiment), who)
    except Exception:  # noqa: BLE001 - folder access is done; the spawn re-syncs MLflow
        log.exception("MLflow %s of %s on %s", how, who, case.get("id"))


def _set_member(registry, case_id: str, who: str, add: bool) -> dict[str, Any]:
    with registry.changing() as cases:
        case = cases[case_id]
        members = set(case.get("members") or [])
        owners = set(case.get("owners") or [])
        if add:
            members.add(who) if who not in owners else None
        else:
            members.discard(who)
            owners.discard(who)
        case["members"], case["owners"] = sorted(members), sorted(owners)
        return dict(case)


def routes(p: str, service: Service) -> list[tuple]:
    kw = {"service": service}
    return [
        (p + "api/cases", MyCases, kw),
        (p + r"api/cases/([a-z][a-z0-9-]{1,62}[a-z0-9])/members", Members, kw),
        (p + r"api/cases/([a-z][a-z0-9-]{1,62}[a-z0-9])/members/([^/]{1,64})", Members, kw),
    ]


def read_own_secret(path: Path, limit: int = 4096) -> str:
    """A secret file of this account's own (0400/0600), opened without following a link."""
    import os
    import stat

    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
            raise PermissionError(
                f"{path} must be a plain file of this account's own with mode 0400"
            )
        return fh.read(limit).decode("ascii", "replace").strip()


def case_maker(args, mlflow_key: str) -> CaseMaker:
    """The ``CaseMaker`` from the service's command line (``--agent-socket``, ``--lead-group``,
    ``--mlflow-admin-file``) and the hub-set ``JUPYTERHUB_API_*`` variables."""
    import os

    experiments = None
    if args.mlflow_url and args.mlflow_admin_file and mlflow_key:
        from idsp.service.case_mlflow import CaseExperiments

        password = read_own_secret(args.mlflow_admin_file)
        experiments = CaseExperiments(args.mlflow_url, password, mlflow_key, args.state)
    return CaseMaker(
        args.agent_socket, args.lead_group, experiments,
        hub_api=os.environ.get("JUPYTERHUB_API_URL", ""), hub_token=os.environ.get("JUPYTERHUB_API_TOKEN", ""),
    )  # fmt: skip
