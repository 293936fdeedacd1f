"""Gated MLflow runs against a real tracking server (`idsp tracking serve`, SQLite)."""

from __future__ import annotations

import json
import socket

import pytest
from idsp import tracking
from idsp.errors import GateRefused, PIIFound
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow

BSN = "111222333"  # passes the elfproef
IBAN = "NL91ABNA0417164300"


def runs_of(server, case) -> list:
    client = MlflowClient(server.url)
    exp = client.get_experiment_by_name(case.id)
    return [] if exp is None else client.search_runs([exp.experiment_id])


def validate_official(case):
    from idsp import quality

    return quality.validate("inspecties", case=case)


def test_exploratory_run_is_tagged_none_and_keeps_every_metric(case, tracked, cli, monkeypatch):
    with case.run("verkenning", datasets=["synthetisch"], params={"model": "logreg"}) as run:
        for i in range(2500):  # one at a time, as a training loop does
            run.log_metric("loss", 1.0 / (i + 1), step=i)
        run.log_text("# notes\nno identifiers here\n", "notes.md")
    client = MlflowClient(tracked.url)
    r = client.get_run(run.run_id)
    assert r.info.status == "FINISHED"
    assert r.data.tags["idsp.approval"] == "none"
    assert r.data.tags["idsp.official"] == "false"
    assert r.data.params["model"] == "logreg"
    assert len(client.get_metric_history(run.run_id, "loss")) == 2500
    with pytest.raises(GateRefused, match="exploratory"):
        tracking.register_model(run.run_id, "ce-model", case=case)
    monkeypatch.chdir(case.root)
    code, out, err = cli("tracking", "register", run.run_id, "ce-model")
    assert code == 1 and "exploratory" in err


def test_official_run_without_approval_creates_no_run(case, tracked):
    validate_official(case)
    with pytest.raises(GateRefused) as err:
        with case.run("train", datasets=["inspecties"]):
            pytest.fail("the body must not run")
    assert err.value.exit_code == 1 and err.value.reasons
    assert runs_of(tracked, case) == []


def test_official_run_without_quality_result_is_refused(approved_case, tracked):
    with pytest.raises(GateRefused, match="quality") as err:
        with approved_case.run("train", datasets=["inspecties"]):
            pass
    assert any("idsp quality validate inspecties" in r for r in err.value.reasons)
    assert runs_of(tracked, approved_case) == []


def test_official_run_after_approval_carries_every_tag(approved_case, tracked, cli, monkeypatch, tmp_path):
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    case = approved_case
    q = validate_official(case)
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([0, 0, 1, 1])
    with case.run("train", datasets=["inspecties"]) as run:
        run.log_params({"C": 1.0, "features": "n_products,country"})
        run.log_metric("auc", 0.81)
        model = LogisticRegression().fit(X, y)
        run.log_model(model, name="model", pip_requirements=["scikit-learn"])  # no slow inference
        rng = np.random.default_rng(1)
        group = np.where(rng.random(400) < 0.5, "eenmanszaak", "bv")
        y_true = rng.integers(0, 2, 400)
        y_pred = (rng.random(400) < np.where(group == "bv", 0.5, 0.3)).astype(int)
        report = run.log_fairness(y_true, y_pred, group, n_boot=50)
        version = run.register_model("ce-risico-model")
        card = run.model_card()
    client = MlflowClient(tracked.url)
    r = client.get_run(run.run_id)
    tags = r.data.tags
    assert r.info.status == "FINISHED"
    assert tags["idsp.official"] == "true"
    assert tags["idsp.approval"] == ",".join(run.decision.approval_ids) != "none"
    assert len(run.decision.approval_ids) == 3
    assert tags["idsp.checklist_hash"] == run.decision.checklist_hash
    assert tags["idsp.case_id"] == case.id
    assert tags["idsp.zaaknummer"] == "ILT-2026-004512"
    assert len(tags["idsp.git.commit"]) == 40 and tags["idsp.git.dirty"] == "false"
    assert tags["idsp.data.inspecties.dvc_md5"] == run.decision.bindings["data"]["inspecties"]
    assert tags["idsp.quality.inspecties"].startswith("passed 2/2")
    assert tags["idsp.quality.inspecties.sha256"] == q.sha256
    assert tags["idsp.quality.inspecties.data_match"] == "true"
    assert tags["idsp.code_hash"] and tags["idsp.params_hash"]
    versions = json.loads(tags["idsp.versions"])
    assert {"python", "mlflow", "pandas", "great-expectations"} <= set(versions)
    assert "idsp.pseudonymisation.key_ids" in tags
    artefacts = {a.path for a in client.list_artifacts(run.run_id, "quality/inspecties")}
    assert any(p.endswith(".json") for p in artefacts) and any(p.endswith(".html") for p in artefacts)
    checklist = {a.path for a in client.list_artifacts(run.run_id, "checklist")}
    assert {"checklist/checklist.md", "checklist/checklist.html"} <= checklist
    reports = {a.path for a in client.list_artifacts(run.run_id, "reports")}
    assert {"reports/fairness.json", "reports/fairness.png"} <= reports
    assert {"model_card/model-card.md", "model_card/model-card.html"} <= {
        a.path for a in client.list_artifacts(run.run_id, "model_card")
    }
    assert r.data.metrics["fairness.demographic_parity_difference"] == pytest.approx(
        report["disparities"]["demographic_parity_difference"]
    )
    low = r.data.metrics["fairness.demographic_parity_difference.ci_low"]
    assert low <= report["disparities"]["demographic_parity_difference"]
    assert version["version"] == "1"
    md = card["markdown"].read_text()
    assert "Official run" in md and tags["idsp.checklist_hash"] in md and q.sha256 in md
    assert "demographic parity difference" in md
    assert "<table>" in card["html"].read_text()
    monkeypatch.chdir(case.root)
    code, out, err = cli("tracking", "model-card", run.run_id, "-o", str(tmp_path / "card"), "--json")
    assert code == 0, err
    again = (tmp_path / "card" / "model-card.md").read_text()
    assert "| Status | FINISHED |" in again and tags["idsp.checklist_hash"] in again


def test_data_changed_after_approval_is_refused(approved_case, tracked):
    case = approved_case
    validate_official(case)
    data = case.root / "data" / "inspecties.csv"
    data.write_text(data.read_text() + "P003,lader,1\n")
    with pytest.raises(GateRefused) as err:
        with case.run("train", datasets=["inspecties"]):
            pass
    assert any("inspecties" in r for r in err.value.reasons)
    assert runs_of(tracked, case) == []


def test_raw_identifiers_are_refused_and_nothing_is_logged(case, tmp_path, tracked):
    with pytest.raises(PIIFound):
        case.run(f"run-{BSN}", datasets=["synthetisch"]).start()
    assert runs_of(tracked, case) == []
    leak = tmp_path / "extract.csv"
    leak.write_text(f"id,iban\n1,{IBAN}\n")
    with case.run("verkenning", datasets=["synthetisch"]) as run:
        with pytest.raises(PIIFound, match="bsn"):
            run.log_param("subject", BSN)
        with pytest.raises(PIIFound, match="email"):
            run.log_metric("score_jan.jansen@example.nl", 1.0)
        with pytest.raises(PIIFound, match="iban"):
            run.log_artifact(leak)
        with pytest.raises(PIIFound, match="phone"):
            run.log_text("bel 0612345678 terug", "notes.txt")
        with pytest.raises(PIIFound, match="kvk"):
            run.log_param("kvk_nummer", "12345678")
        run.log_param("n_estimators", 100)
        run.log_metric("auc", 0.7)
    client = MlflowClient(tracked.url)
    r = client.get_run(run.run_id)
    assert r.info.status == "FINISHED"
    assert r.data.params == {"n_estimators": "100"}
    assert set(r.data.metrics) == {"auc"}
    assert client.list_artifacts(run.run_id) == []


def test_an_error_inside_the_run_marks_it_failed(case, tracked):
    with pytest.raises(ZeroDivisionError):
        with case.run("crash", datasets=["synthetisch"]) as run:
            run.log_metric("before", 1.0)
            1 / 0  # noqa: B018
    r = MlflowClient(tracked.url).get_run(run.run_id)
    assert r.info.status == "FAILED"
    assert "ZeroDivisionError" in r.data.tags["idsp.failure"]
    assert r.data.metrics["before"] == 1.0  # buffered metrics are flushed before the end
    last = tracking.last_run(case)
    assert last["run_id"] == run.run_id and last["status"] == "FAILED" and not last["official"]


class DeadTrackingServer:
    """A port where nothing listens: what a client sees when the server is down."""

    def __init__(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.url = f"http://127.0.0.1:{s.getsockname()[1]}"


def test_dead_tracking_server_gives_a_clear_error_and_no_run(case, monkeypatch, cli):
    import time

    dead = DeadTrackingServer()
    monkeypatch.setenv("IDSP_TRACKING__URI", dead.url)
    monkeypatch.setenv("IDSP_TRACKING__RETRIES", "2")
    started = time.monotonic()
    with pytest.raises(tracking.TrackingServerUnavailable) as err:
        with case.run("verkenning", datasets=["synthetisch"]):
            pytest.fail("the body must not run")
    assert time.monotonic() - started < 15
    assert dead.url in err.value.message and "idsp tracking serve" in err.value.message
    assert err.value.exit_code == 2


class VanishingTrackingServer:
    """A TCP proxy in front of the real server that can be cut and restored mid-run."""

    def __init__(self, target_url: str):
        import threading

        host, port = target_url.rsplit(":", 1)
        self.target = (host.removeprefix("http://"), int(port))
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.sock.listen(16)
        self.up = True
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self):
        self.up = False
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass

    def _accept(self):
        import threading

        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if not self.up:
                conn.close()
                continue
            upstream = socket.create_connection(self.target)
            self.conns += [conn, upstream]
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def close(self):
        self.sock.close()


def test_a_run_cut_off_mid_way_is_marked_failed_by_the_next_run(case, tracked, monkeypatch):
    proxy = VanishingTrackingServer(tracked.url)
    monkeypatch.setenv("IDSP_TRACKING__URI", proxy.url)
    monkeypatch.setenv("IDSP_TRACKING__RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with pytest.raises(tracking.TrackingServerUnavailable, match=proxy.url):
        with case.run("cut", datasets=["synthetisch"]) as run:
            run.log_metric("a", 1.0)
            proxy.cut()
            run.log_param("after_cut", 1)
    cut_id = run.run_id
    client = MlflowClient(tracked.url)
    assert client.get_run(cut_id).info.status == "RUNNING"  # the server never heard the end
    proxy.up = True
    # the next run through that server closes it first; then it is cut after its last call:
    # the block ends normally, but the end cannot be written
    with pytest.raises(tracking.TrackingServerUnavailable, match="could not be completed"):
        with case.run("cut-at-end", datasets=["synthetisch"]) as run:
            assert client.get_run(cut_id).info.status == "FAILED"
            run.log_metric("b", 2.0)
            proxy.cut()
    end_id = run.run_id
    assert client.get_run(end_id).info.status == "RUNNING"
    proxy.up = True
    with case.run("next", datasets=["synthetisch"]):
        pass
    assert client.get_run(end_id).info.status == "FAILED"
    assert "TrackingServerUnavailable" in client.get_run(cut_id).data.tags["idsp.failure"]
    assert "metrics not all written" in client.get_run(end_id).data.tags["idsp.failure"]
    proxy.close()


def test_a_development_approval_allows_development_runs_that_cannot_register(case, keys, tracked):
    """Real data, first step: approved for development, a run may build and evaluate the
    model (tagged so), but neither a run for use nor a model registration is allowed."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from testkit.ethics import answer_all, approve_all

    from legal_ethics import workflow

    answer_all(case, only_blocking=True)
    workflow.submit(case, actor="pim", purpose="development")
    approve_all(case, keys)
    validate_official(case)
    with case.run("ontwikkeling", datasets=["inspecties"], purpose="development") as run:
        run.log_model(LogisticRegression().fit(np.array([[0.0], [1.0]]), np.array([0, 1])), "model")
    tags = MlflowClient(tracked.url).get_run(run.run_id).data.tags
    assert tags["idsp.official"] == "true" and tags["idsp.purpose"] == "development"
    assert tags["idsp.approval"] != "none"
    with pytest.raises(GateRefused, match="not for use|development"):
        tracking.register_model(run.run_id, "ce-model", case=case)
    before = len(runs_of(tracked, case))
    with pytest.raises(GateRefused) as refused:
        with case.run("gebruik", datasets=["inspecties"]):  # purpose "use" is the default
            pass
    assert any("approved for development only" in r for r in refused.value.reasons)
    assert len(runs_of(tracked, case)) == before  # the refused run left nothing on the server


def test_model_card_of_a_closed_run_is_logged_from_the_cli_and_register_needs_the_case(
    case, tracked, cli, monkeypatch, tmp_path
):
    with case.run("verkenning", datasets=["synthetisch"]) as run:
        run.log_metric("auc", 0.7)
    monkeypatch.chdir(case.root)
    code, out, err = cli("tracking", "model-card", run.run_id, "-o", str(tmp_path / "card"), "--log", "--json")
    assert code == 0, err
    logged = {a.path for a in MlflowClient(tracked.url).list_artifacts(run.run_id, "model_card")}
    assert logged == {"model_card/model-card.md", "model_card/model-card.html"}
    assert "Purpose (doelbinding)" in (tmp_path / "card" / "model-card.md").read_text()  # the case was found here
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("tracking", "register", run.run_id, "ce-model")
    assert code == 2 and "no case project here" in err
