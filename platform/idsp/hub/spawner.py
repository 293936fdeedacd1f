"""The user-server spawner: each hub user's JupyterLab runs as their own OS account.

Rule: before a server starts, the account exists (created on first spawn, private home),
its OS groups equal its hub groups, its case folders are shared with the case group and its
memory/CPU limits are in place; before it is ready (routed to by the hub) its MLflow account
has access to its cases only. If any of that fails, the server is stopped and never ready.
Processes are never started as root.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import pwd
import time
from pathlib import Path

import aiohttp
from jupyterhub.spawner import LocalProcessSpawner, set_user_setuid
from jupyterhub.utils import url_path_join
from traitlets import Unicode, default

from idsp.hub import accounts, limits
from idsp.hub.case_links import GIT_EMAIL_DOMAIN
from idsp.hub.cases import read_index
from idsp.hub.state import read_secret

# How often start() asks a starting server whether it answers. JupyterHub's own wait
# (exponential back-off with full jitter, up to 5 s between tries) notices a started server
# up to seconds late; asked every 0.1 s it is seen within 0.1 s.
READY_POLL_SECONDS = 0.1
# Who may use a user's JupyterLab: a custom scope that the `user` role holds for itself only
# (`!user`) and the hub's fixed `admin` role does not hold, so a hub admin can start and stop
# servers but not open another user's (docs/hub.md, "Admins and other users' servers").
OWN_SERVER_SCOPE = "custom:idsp:own-server"


class IdspSpawner(LocalProcessSpawner):
    user_prefix = Unicode("idsp-", config=True, help="prefix of the OS account names")
    homes_root = Unicode("/home", config=True, help="parent folder of user homes")
    case_index = Unicode("", config=True, help="the platform's case index (YAML)")
    cases_root = Unicode("", config=True, help="folder with the case projects")
    dvc_remote_root = Unicode("", config=True, help="local DVC remote root; each case's remote below it")
    git_email_domain = Unicode(
        GIT_EMAIL_DOMAIN, config=True,
        help="domain of the git e-mail of each user (<hub name>@<domain>); .invalid until an admin sets a real one",
    )
    case_registry = Unicode("", config=True, help="the platform service's case registry (JSON), read as root")
    service_user = Unicode("", config=True, help="the platform service's OS account (reads every case)")
    git_config_dir = Unicode("", config=True, help="root's folder of per-account git configs (safe case folders)")
    service_experiments = Unicode("", config=True, help="the platform service's record of case experiments")
    tracking_uri = Unicode("", config=True, help="MLflow tracking URI injected into servers")
    tracking_admin_password_file = Unicode("", config=True)
    tracking_user_key_file = Unicode("", config=True)
    tracking_record_file = Unicode(
        "", config=True, help="the hub's record of the case experiments it made (in its own state folder)"
    )

    @default("oauth_access_scopes")
    def _own_server_only(self) -> list[str]:
        # instead of access:servers!user=<name>, which the admin role holds for every user
        return [f"{OWN_SERVER_SCOPE}!user={self.user.name}"]

    @default("oauth_client_allowed_scopes")
    def _own_server_token(self) -> list[str]:
        # the server's OAuth client may hand out only the scopes listed here (JupyterHub adds
        # access:servers itself): without this the login token lacks the scope asked above
        return [f"{OWN_SERVER_SCOPE}!user={self.user.name}"]

    _limits: limits.Limits | None = None
    _tracking_stamp: list | None = None
    _case_paths: list[str] = []  # set by _prepare_os before the server starts

    def load_state(self, state):
        super().load_state(state)
        self._tracking_stamp = state.get("idsp_tracking_stamp")

    def get_state(self):
        state = super().get_state()
        if self._tracking_stamp:
            state["idsp_tracking_stamp"] = self._tracking_stamp
        return state

    @property
    def os_name(self) -> str:
        return accounts.os_user_name(self.user_prefix, self.user.name)

    def _hub_groups(self) -> list[str]:
        return sorted(g.name for g in self.user.groups)

    def _case_ids(self) -> list[str]:
        return [g.removeprefix("case-") for g in self._hub_groups() if g.startswith("case-")]

    def _registry(self) -> dict[str, dict] | None:
        if not self.case_registry or not Path(self.case_registry).is_file():
            return None
        from idsp.hub.case_registry import CaseRegistry

        return CaseRegistry(Path(self.case_registry)).load()

    def _memberships(self) -> dict[str, bool]:
        """case group -> is this user in it: from the service's registry on the hub (the truth
        about membership there); before the service has one, from each case's case.yaml."""
        registry = self._registry()
        if registry is not None:
            from idsp.hub.case_registry import people

            return {f"case-{cid}": self.user.name in people(c) for cid, c in registry.items() if not c.get("status")}
        cases = read_index(Path(self.case_index), Path(self.cases_root)) if self.case_index else []
        return {case.group: self.user.name in case.members for case in cases}

    def _join_case_groups(self) -> None:
        """Make the hub's case groups match the membership (``_memberships``) at each start."""
        if not self.case_index and not self.case_registry:
            return
        from jupyterhub import orm

        db = self.user.db
        current = set(self._hub_groups())
        for group_name, member in self._memberships().items():
            if member and group_name not in current:
                group = orm.Group.find(db, group_name)
                if group is None:
                    group = orm.Group(name=group_name)
                    db.add(group)
                self.user.orm_user.groups.append(group)
                self.log.info("added %s to %s (a member)", self.user.name, group_name)
            elif not member and group_name in current:
                group = orm.Group.find(db, group_name)
                self.user.orm_user.groups.remove(group)
                self.log.info("removed %s from %s (not a member)", self.user.name, group_name)
        db.commit()

    async def start(self):
        t0 = time.monotonic()
        name = self.os_name
        self._join_case_groups()  # hub database: stays on the event loop's thread
        groups = [accounts.os_group_name(self.user_prefix, g) for g in self._hub_groups()]
        my_cases = set(self._case_ids())
        lim = limits.Limits(name, limits.parse_bytes(self.mem_limit), self.cpu_limit)
        # useradd/usermod/groupadd and cgroupfs writes block: keep them off the event loop.
        account, how = await asyncio.to_thread(self._prepare_os, name, groups, my_cases, lim)
        self._limits = lim
        self.log.info("server of %s runs as %s (uid %s); limits via %s", self.user.name, name, account.pw_uid, how)
        # The MLflow account is set up while the server process starts (both take seconds,
        # and the MLflow server hashes each new password); start() returns after both.
        provisioning = asyncio.ensure_future(self._provision_tracking(self._tracking_environment()))
        try:
            ip, port = await super().start()
        except BaseException:
            provisioning.cancel()
            raise
        await provisioning  # if it fails, JupyterHub stops the server it started
        await self._wait_answering(ip, port, time.monotonic() - t0)
        return ip, port

    async def _wait_answering(self, ip: str, port: int, spent: float) -> None:
        """Return as soon as the new server answers HTTP (any status below 500), so that
        JupyterHub's own check that follows succeeds at its first try; raise if the server
        process ended. After ``start_timeout`` minus what was spent, leave the rest of the
        waiting (and its error) to JupyterHub's ``http_timeout``."""
        url = url_path_join(f"http://{ip}:{port}", self.server.base_url if self.server else "/", "api")
        deadline = time.monotonic() + min(self.http_timeout, self.start_timeout - spent - 1)
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while time.monotonic() < deadline:
                code = self.proc.poll() if self.proc is not None else None
                if code is not None:
                    raise RuntimeError(f"the server of {self.user.name} exited with code {code} while starting")
                try:
                    async with http.get(url, allow_redirects=False) as r:
                        if r.status < 500:
                            return
                except (TimeoutError, aiohttp.ClientError, OSError):
                    pass
                await asyncio.sleep(READY_POLL_SECONDS)

    def _prepare_os(self, name, groups, my_cases, lim):
        self._case_paths = []  # the user's case folders, for git's safe.directory (user_env)
        with accounts.OS_LOCK:
            account = accounts.ensure_account(name, Path(self.homes_root))
            accounts.set_groups(name, groups)
            if self.case_index:
                for case in read_index(Path(self.case_index), Path(self.cases_root)):
                    if case.id in my_cases:
                        group = accounts.os_group_name(self.user_prefix, case.group)
                        remote = Path(self.dvc_remote_root) if self.dvc_remote_root else None
                        accounts.share_case(case, group, remote)
                        self._case_paths.append(str(case.path))
            self._sync_case_access()
        return account, lim.prepare()

    def _sync_case_access(self) -> None:
        """Cases made through the service: ACL entries, ``~/cases/<id>`` links and git's safe
        folders for the cases this user is in, none for the ones they left (as root, by fd)."""
        registry = self._registry()
        if registry is None:
            return
        from idsp.hub.case_access import CaseFolders

        service_uid = pwd.getpwnam(self.service_user).pw_uid if self.service_user else None
        folders = CaseFolders(Path(self.cases_root), Path(self.dvc_remote_root) if self.dvc_remote_root else None,
                              Path(self.git_config_dir), self.user_prefix, service_uid)  # fmt: skip
        done = folders.sync_user(self.user.name, registry)
        self.log.info("case access of %s: %s", self.user.name, done)

    def _tracking_environment(self) -> str | None:
        """Put the MLflow address and this user's MLflow login into the server's environment;
        returns the password (derived from the key, so no MLflow call is needed for it)."""
        if not self.tracking_uri:
            return None
        from idsp.hub.mlflow_password import user_password

        password = user_password(read_secret(Path(self.tracking_user_key_file)), self.user.name)
        current: dict = self.environment  # type: ignore[has-type]  # a traitlets Dict, untyped for mypy
        self.environment = {
            **current,
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            # idsp.tracking reads the platform setting, not MLFLOW_TRACKING_URI
            "IDSP_TRACKING__URI": self.tracking_uri,
            "MLFLOW_TRACKING_USERNAME": self.user.name,
            "MLFLOW_TRACKING_PASSWORD": password,
        }
        return password

    async def _provision_tracking(self, password: str | None) -> None:
        if password is None:
            return
        from idsp.hub.tracking import ExperimentRecord, TrackingAdmin

        cases = sorted(self._case_ids())
        # Each admin call costs a password hash on the MLflow side: skip when nothing changed
        # since the last spawn (same cases, same derived password).
        # "claimed": stamps from before the hub recorded its experiments do not match, so
        # the first spawn after an upgrade claims the user's case experiments.
        stamp = [cases, hashlib.sha256(password.encode()).hexdigest()[:16], "claimed"]
        if self._tracking_stamp != stamp:
            if not self.tracking_record_file:  # no record: every case name would look squatted
                raise RuntimeError("IdspSpawner.tracking_record_file is not set (the hub configurer sets it)")
            admin = TrackingAdmin(
                self.tracking_uri,
                read_secret(Path(self.tracking_admin_password_file)),
                ExperimentRecord(
                    Path(self.tracking_record_file),
                    also=(Path(self.service_experiments),) if self.service_experiments else (),
                ),
                logger=self.log,
            )
            experiments = await admin.provision(self.user.name, password, cases)
            self._tracking_stamp = stamp
            self.log.info("MLflow account %s may edit %s", self.user.name, experiments or "no experiments")

    def make_preexec_fn(self, name):
        setuid = set_user_setuid(self.os_name)
        lim = self._limits

        def preexec():
            if lim is not None:
                lim.join()  # as root, before dropping privileges
            # files a member makes in a shared case folder stay editable by the other members
            # (the home is 0700, so nothing there becomes visible to anyone else)
            os.umask(0o007)
            setuid()

        return preexec

    def user_env(self, env):
        entry = pwd.getpwnam(self.os_name)
        env["USER"] = entry.pw_name
        env["LOGNAME"] = entry.pw_name
        env["HOME"] = entry.pw_dir
        env["SHELL"] = entry.pw_shell or "/bin/bash"
        env["IDSP_HOME"] = str(Path(entry.pw_dir) / ".idsp")
        # git knows who commits: the hub name, the one identity everywhere (not idsp-<name>)
        for role in ("AUTHOR", "COMMITTER"):
            env[f"GIT_{role}_NAME"] = self.user.name
            env[f"GIT_{role}_EMAIL"] = f"{self.user.name}@{self.git_email_domain}"
        if self.git_config_dir:
            from idsp.hub.case_links import git_config_path

            # root's file, rewritten at each member change: the case folders git may work in
            env["GIT_CONFIG_SYSTEM"] = str(git_config_path(Path(self.git_config_dir), entry.pw_name))
        if self.cases_root:
            env["IDSP_PATHS__CASES_ROOT"] = self.cases_root
        if self.case_index:
            env["IDSP_PATHS__CASE_INDEX"] = self.case_index
            # A case repository belongs to root (its folder is shared by group), which git
            # refuses to work in ("dubious ownership") unless the folder is named safe in
            # protected configuration; GIT_CONFIG_* is that (command scope), for this
            # user's cases only.
            # Case members run each other's code anyway (the pipeline, the pre-commit hooks
            # of the case); but a plain `git status` must not run a program another member
            # named in the shared .git/config, so the file-system monitor is switched off.
            pairs = [("safe.directory", path) for path in self._case_paths] + [("core.fsmonitor", "false")]
            env["GIT_CONFIG_COUNT"] = str(len(pairs))
            for i, (key, value) in enumerate(pairs):
                env[f"GIT_CONFIG_KEY_{i}"] = key
                env[f"GIT_CONFIG_VALUE_{i}"] = value
        return env

    async def stop(self, now=False):
        await super().stop(now=now)
        if self._limits is None:
            self._limits = limits.Limits(self.os_name, None, None)
            self._limits.dirs = [
                d
                for d in (
                    limits.CGROUP_ROOT / "idsp" / self.os_name,
                    limits.CGROUP_ROOT / "memory" / "idsp" / self.os_name,
                    limits.CGROUP_ROOT / "cpu" / "idsp" / self.os_name,
                )
                if d.is_dir()
            ]
        # waits (off the event loop) for the server's last processes to leave its cgroups
        await asyncio.to_thread(self._limits.remove)
