"""Who acts, and where it is recorded: on the hub the platform service proves the user and
records answers and submissions; off the hub the process trusts its one user and says so.

The service is the real tornado app with JupyterHub's HubOAuth (tests/service/servicekit.py);
only the hub behind it is a token table."""

from __future__ import annotations

import json
import os
import pwd
import socket

import pytest
import yaml
from idsp.errors import Refused, UserError

from legal_ethics import audit, reviewers, workflow
from tests.service.servicekit import ServedService, user_model


@pytest.fixture
def hub(tmp_path, case, monkeypatch):
    """A user server's environment: alice's own token, the service the platform set."""
    index = tmp_path / "index.yaml"
    index.write_text(yaml.safe_dump({"cases": [{"id": case.id, "path": str(case.root), "members": ["alice"]}]}))
    tokens = {"tok-alice": user_model("alice"), "tok-ghost": user_model("ghost")}
    with ServedService(tmp_path / "state", index, tmp_path, tokens) as svc:
        monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "tok-alice")
        monkeypatch.setenv("JUPYTERHUB_API_URL", "http://127.0.0.1:1/hub/api")
        monkeypatch.setenv("IDSP_SERVICE_URL", svc.url)
        yield svc


def _service_log(svc) -> list[dict]:
    return [json.loads(line) for line in svc.log.path.read_text().splitlines()]


def test_on_the_hub_the_actor_is_the_user_the_service_proves_not_idsp_user(hub, case, kit, monkeypatch, capsys):
    monkeypatch.setenv("IDSP_USER", "ghost")
    monkeypatch.setenv("LOGNAME", "ghost")
    assert reviewers.current_user() == "alice"
    assert reviewers.current_user() == "alice"
    err = capsys.readouterr().err
    assert err.count("$IDSP_USER=ghost is ignored on the hub; you are alice, as the hub proved") == 1
    item = next(i for i in case_items(case) if i.answer_type in ("yes_no", "text", "choice"))
    workflow.answer(case, item.key, kit.passing_value(item), rationale="r")
    entry = _service_log(hub)[-1]
    assert (entry["event"], entry["actor"], entry["case_id"]) == ("answered", "alice", case.id)
    assert "recorded_by" not in entry
    # the service recorded it; the user's own log did not get a copy to pass for it
    assert not [e for e in audit.entries() if e.get("event") == "answered"]


def test_on_the_hub_another_actor_is_refused_before_anything_is_written(hub, case, kit):
    item = next(i for i in case_items(case) if i.answer_type in ("yes_no", "text", "choice"))
    before = (case.root / "ethics").stat().st_mtime_ns, sorted(p.name for p in (case.root / "ethics").iterdir())
    with pytest.raises(Refused, match="on the hub you act as 'alice', as the hub proved, not as 'ghost'"):
        workflow.answer(case, item.key, kit.passing_value(item), rationale="r", actor="ghost")
    assert sorted(p.name for p in (case.root / "ethics").iterdir()) == before[1]
    # and the wire itself: a body naming someone else is the service's 403
    with pytest.raises(Refused, match="names 'ghost' as the actor, but the hub proved that you are 'alice'"):
        audit.append("answered", actor="ghost", case_id=case.id)


def test_events_the_service_does_not_take_yet_are_marked_as_recorded_by_the_process(hub, case):
    entry = audit.append("gate.checked", actor="alice", case_id=case.id, allowed=False)
    assert entry["recorded_by"] == "process"
    assert [e["recorded_by"] for e in audit.entries() if e["event"] == "gate.checked"] == ["process"]
    assert audit.verify().ok  # the mark is inside the hash: it cannot be taken off unseen


def test_a_service_that_cannot_be_reached_stops_the_step_with_exit_2(case, kit, cli, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "tok-alice")
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://127.0.0.1:1/hub/api")
    monkeypatch.setenv("IDSP_SERVICE_URL", f"http://127.0.0.1:{port}/services/idsp/")
    monkeypatch.chdir(case.root)
    answers = (case.root / "ethics").iterdir()
    before = sorted(p.name for p in answers)
    item = next(i for i in case_items(case) if i.answer_type == "yes_no")
    code, _, err = cli("ethics", "answer", item.key, "ja", "--rationale", "r")
    assert code == 2 and "the platform service is not reachable" in err and "nothing was sent" in err
    assert f"127.0.0.1:{port}" in err and "Traceback" not in err
    assert sorted(p.name for p in (case.root / "ethics").iterdir()) == before


@pytest.mark.parametrize(
    "url",
    ["http://evil.example/services/idsp/", "http://127.0.0.1:8002/services/mlflow/", "file:///tmp/x/services/idsp/"],
)
def test_the_service_address_must_be_the_hubs_own_service(url, monkeypatch, tmp_path):
    from idsp.service.link import service_url

    env = {"JUPYTERHUB_API_TOKEN": "t", "JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api", "IDSP_SERVICE_URL": url}
    with pytest.raises(UserError, match="which is not the hub's platform service") as err:
        service_url(env)
    assert "Unset IDSP_SERVICE_URL" in str(err.value)
    # the platform config never moves it: IDSP_CONFIG / IDSP_HOME are not read at all
    (tmp_path / "platform.yaml").write_text("hub:\n  proxy_api_port: 9100\n")
    monkeypatch.setenv("IDSP_CONFIG", str(tmp_path / "platform.yaml"))
    good = {**env, "IDSP_SERVICE_URL": "http://127.0.0.1:8002/services/idsp/"}
    assert service_url(good) == "http://127.0.0.1:8002/services/idsp/"


def test_off_the_hub_idsp_user_decides_and_status_says_whom_it_trusts(case, cli, monkeypatch):
    monkeypatch.setenv("IDSP_USER", "pim")
    assert reviewers.current_user() == "pim"
    monkeypatch.chdir(case.root)
    code, out, _ = cli("ethics", "status")
    assert code == 0 and "in-process mode: no hub here, so this mode trusts its one user" in out
    code, out, _ = cli("ethics", "status", "--json")
    assert json.loads(out)["mode"]["mode"] == "in-process"


def test_os_user_is_the_real_account_not_logname(monkeypatch):
    monkeypatch.setenv("LOGNAME", "ghost")
    monkeypatch.setenv("USER", "ghost")
    entry = audit.append("gate.checked", actor="pim", case_id="ce-1")
    assert entry["os_user"] == pwd.getpwuid(os.getuid()).pw_name != "ghost"


def test_a_deleted_local_log_is_missing_never_intact_and_nothing_new_starts(case, cli, idsp_home):
    log = idsp_home / "audit" / "audit.jsonl"
    assert log.exists() and (idsp_home / "audit" / "audit.created").exists()
    log.unlink()
    code, out, _ = cli("ethics", "audit", "verify")
    assert code == 1 and "audit log MISSING" in out and "audit.created shows it was created" in out
    assert "intact" not in out
    with pytest.raises(Refused, match="audit log is missing"):
        audit.append("gate.checked", actor="pim", case_id=case.id)
    assert not log.exists()
    (idsp_home / "audit" / "audit.created").unlink()  # the head file still tells
    assert audit.verify().status == "missing"


def test_a_platform_that_recorded_nothing_says_so(cli):
    code, out, _ = cli("ethics", "audit", "verify")
    assert code == 0 and "none yet" in out and "nothing has been recorded here" in out


def test_on_the_hub_audit_verify_asks_the_service(hub, cli):
    code, out, _ = cli("ethics", "audit", "verify")
    assert code == 0 and "platform audit log (platform service) intact: 1 entries" in out
    hub.log.path.unlink()
    code, out, _ = cli("ethics", "audit", "verify", "--json")
    assert code == 1 and json.loads(out)["service"]["status"] == "missing"


def case_items(case):
    from legal_ethics import checklist

    return checklist.load_definition(case).items
