"""The attacks of issue 13 that need a real MLflow server (`idsp tracking serve`): registration
and the model card that trust tags (class 3), and data swapped inside a run (class 6).

``mlflow.register_model`` called directly bypasses idsp altogether: only the registry's
permissions on the server can close that (the platform-runner part of issue 13).
"""

from __future__ import annotations

import json

import pytest
from idsp import tracking
from idsp.errors import GateRefused, Refused
from mlflow.tracking import MlflowClient
from testkit.mlflow_server import point_client_at, tracking_server  # noqa: F401  (the fixture)

pytestmark = pytest.mark.slow


@pytest.fixture
def tracked(tracking_server, monkeypatch):  # noqa: F811
    return point_client_at(monkeypatch, tracking_server, retries=1, timeout=5)


def _model(run) -> None:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(np.array([[0.0], [1.0]]), np.array([0, 1]))
    run.log_model(model, name="model", pip_requirements=["scikit-learn"])


class TestRegistrationTrustsTheLogNotTags:
    def test_a_draft_case_run_with_forged_official_tags(self, case, tracked, cli, monkeypatch, tmp_path):
        forged = {"idsp.official": "true", "idsp.approval": "dec-000000000000", "idsp.purpose": "use"}
        with case.run("vervalst", datasets=["synthetisch"], tags=forged) as run:
            _model(run)
        assert MlflowClient(tracked.url).get_run(run.run_id).data.tags["idsp.official"] == "true"  # the tags lie
        with pytest.raises(GateRefused) as err:
            tracking.register_model(run.run_id, "ce-vervalst", case=case)
        reasons = " ".join(err.value.reasons)
        assert f"the audit log records run {run.run_id} as exploratory" in reasons
        assert "claims approval 'dec-000000000000' in its tags, but the audit log recorded none" in reasons
        assert MlflowClient(tracked.url).search_registered_models() == []

        monkeypatch.chdir(case.root)
        code, _, err_text = cli("tracking", "register", run.run_id, "ce-vervalst")
        assert code == 1 and "the audit log records run" in " ".join(err_text.split())
        code, _, err_text = cli("tracking", "model-card", run.run_id, "-o", str(tmp_path / "card"))
        assert code == 0, err_text
        card = (tmp_path / "card" / "model-card.md").read_text()
        assert "**Not an official run** — its tags say official, but the audit log does not" in card
        assert "**Official run**" not in card

    def test_a_run_made_around_idsp_with_copied_tags(self, approved_case, tracked, cli, monkeypatch):
        client = MlflowClient(tracked.url)
        with approved_case.run("echt", datasets=["inspecties"]) as real:
            _model(real)
        tags = dict(client.get_run(real.run_id).data.tags)
        experiment = client.get_experiment_by_name(approved_case.id).experiment_id
        copy = client.create_run(experiment, tags=tags).info.run_id  # every tag copied, the name too
        client.set_terminated(copy)
        with pytest.raises(GateRefused) as err:
            tracking.register_model(copy, "ce-kopie", case=approved_case)
        assert f"the audit log has no record of MLflow run {copy} starting (no run.started entry)" in \
            " ".join(err.value.reasons)

        bare = client.create_run(experiment, run_name="kaal", tags={"idsp.official": "true"}).info.run_id
        monkeypatch.chdir(approved_case.root)
        code, out, err_text = cli("ethics", "audit", "verify", "--against-tracking", "--json")
        assert code == 1, err_text
        problems = " ".join(json.loads(out[out.index("{\n"):])["problems"])  # after MLflow's own "View run" lines
        assert f"MLflow run {bare} has no audit record (no idsp.audit.entry tag, no run.started entry)" in problems
        assert f"is not the start of MLflow run {copy}, as the run recorded" in problems  # copied anchor

    def test_a_tag_edited_after_an_official_run_is_reported(self, approved_case, tracked):
        """Beyond the issue: a member with EDIT changes the approval tag of a real run."""
        from legal_ethics import audit

        with approved_case.run("echt", datasets=["inspecties"]) as run:
            _model(run)
        client = MlflowClient(tracked.url)
        client.set_tag(run.run_id, "idsp.approval", "dec-andere")
        claims = tracking.registry.run_claims()
        anchors = {rid: c.get(audit.AUDIT_TAG) for rid, c in claims.items()}
        problems = audit.check_anchors(anchors, tracking_uri=tracked.url, claims=claims)
        assert any(f"run {run.run_id} claims approval 'dec-andere' in its tags, but the audit log recorded" in p
                   for p in problems), problems


class TestDataReadIsDataBound:
    def test_a_file_swapped_inside_the_run_is_refused_when_read(self, approved_case, tracked):
        path = approved_case.dataset_path("inspecties")
        with approved_case.run("train", datasets=["inspecties"]) as run:
            assert len(approved_case.load("inspecties")) == 2
            path.write_text(path.read_text() + "P003,fiets,1\n")  # swapped after the gate said yes
            with pytest.raises(Refused) as err:
                approved_case.load("inspecties")
        message = err.value.message
        assert "dataset inspecties changed: data/inspecties.csv has md5" in message
        assert f"was bound when run {run.run_id} started; the data read must be the data bound" in message

    def test_a_swap_with_its_dvc_record_rewritten_mid_run_is_refused_too(self, approved_case, tracked):
        """Beyond the issue: inside a run the md5 the gate bound counts, not the DVC record now."""
        import hashlib

        path = approved_case.dataset_path("inspecties")
        record = path.with_name(path.name + ".dvc")
        with approved_case.run("train", datasets=["inspecties"]) as run:
            old = hashlib.md5(path.read_bytes()).hexdigest()
            path.write_text(path.read_text() + "P003,fiets,1\n")
            record.write_text(record.read_text().replace(old, hashlib.md5(path.read_bytes()).hexdigest()))
            with pytest.raises(Refused, match=f"was bound when run {run.run_id} started"):
                approved_case.load("inspecties")

    def test_official_data_read_inside_an_exploratory_run(self, case, tracked):
        """Beyond the issue: a run started on synthetic data may not read the real data."""
        with case.run("verkenning", datasets=["synthetisch"]):
            with pytest.raises(Refused) as err:
                case.load("inspecties")
        assert "dataset inspecties holds real or personal data, and run 'verkenning'" in err.value.message
        assert "the gate never checked a run on it" in err.value.message
