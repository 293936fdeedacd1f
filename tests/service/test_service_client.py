"""The library's client: on the hub it asks the service with the server's token; without a
hub it says it runs in-process and trusts its one user."""

from __future__ import annotations

import socket

import pytest
from idsp.errors import Refused, UserError
from idsp.service.client import HubService, InProcess, connect, on_hub
from idsp.service.link import service_url

HUB_ENV = {"JUPYTERHUB_API_TOKEN": "tok-alice", "JUPYTERHUB_API_URL": "http://127.0.0.1:1/hub/api"}


def test_without_a_hub_it_says_in_process_and_whom_it_trusts():
    service = connect({})
    assert isinstance(service, InProcess) and not on_hub({})
    me = service.whoami()
    assert me["mode"] == "in-process" and "trusts its one user" in me["note"]
    # a token alone, without the hub's API address, is no hub
    assert isinstance(connect({"JUPYTERHUB_API_TOKEN": "x"}), InProcess)


def test_in_process_audit_is_the_local_chain_and_a_missing_log_says_so():
    service = InProcess()
    first = service.verify()  # nothing recorded yet: said so, never "intact: 0 entries"
    assert first["status"] == "none" and "nothing was recorded here yet" in first["problems"][0]
    entry = service.audit("answered", case_id="ce-1", item="avg-01")
    assert entry["actor"] == service.whoami()["name"] and entry["data"] == {"item": "avg-01"}
    report = service.verify()
    assert report["status"] == "intact" and report["entries"] == 1 and "trusts" in report["note"]
    from legal_ethics import audit

    audit.log_path().unlink()
    gone = service.verify()
    assert gone["status"] == "missing" and "deleted or moved" in gone["problems"][0]


def test_on_the_hub_there_is_no_quiet_fallback_to_in_process():
    assert on_hub(HUB_ENV)
    with pytest.raises(UserError, match="IDSP_SERVICE_URL"):
        connect(HUB_ENV)
    with pytest.raises(UserError, match="not the hub's platform service"):
        connect({**HUB_ENV, "IDSP_SERVICE_URL": "https://collector.example/services/idsp/"})
    # below a hub base URL the service is <base>services/idsp/, and only that path
    below = {**HUB_ENV, "JUPYTERHUB_API_URL": "http://127.0.0.1:1/idsp/hub/api/"}
    assert service_url({**below, "IDSP_SERVICE_URL": "http://127.0.0.1:2/idsp/services/idsp/"})
    for wrong in ("http://127.0.0.1:2/services/idsp/", "http://127.0.0.1:2/idsp/services/other/"):
        with pytest.raises(UserError, match="must be /idsp/services/idsp/ on this machine"):
            service_url({**below, "IDSP_SERVICE_URL": wrong})


def test_on_the_hub_the_service_answers_with_the_servers_token(served):
    with connect({**HUB_ENV, "IDSP_SERVICE_URL": served.url}) as service:
        assert isinstance(service, HubService)
        assert service.whoami()["name"] == "alice"
        assert [c["id"] for c in service.cases()] == ["ce-1"]
        assert service.audit("answered", case_id="ce-1", item="avg-01")["actor"] == "alice"
        with pytest.raises(Refused, match="not one of your cases"):
            service.audit("answered", case_id="ce-2")
        with pytest.raises(Refused, match="cannot record 'approved'"):
            service.audit("approved", case_id="ce-1")
        assert service.verify()["status"] == "intact"
    with pytest.raises(UserError, match="did not accept this server's hub token"):
        HubService(served.url, "stale-token").whoami()


def test_an_unreachable_service_is_named_with_its_address():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(UserError, match="not reachable") as err:
        HubService(f"http://127.0.0.1:{port}/services/idsp/", "t", timeout=2).whoami()
    assert f"127.0.0.1:{port}" in str(err.value)
