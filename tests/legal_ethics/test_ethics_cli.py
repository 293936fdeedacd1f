"""`idsp ethics ...` in-process: exit codes 0/1/2, JSON output, no traceback for user errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

HEAVY = ("pandas", "great_expectations", "mlflow", "dvc", "sklearn")


def test_help_imports_nothing_heavy():
    code = (
        "import sys, importlib, pkgutil\n"
        "import legal_ethics\n"
        "for m in pkgutil.iter_modules(legal_ethics.__path__):\n"
        "    importlib.import_module('legal_ethics.' + m.name)\n"
        "import typer.main\n"
        "from idsp.cli import ethics\n"
        "cmd = typer.main.get_command(ethics.app)\n"
        "try:\n"
        "    cmd.main(['--help'], standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": f"{root / 'platform'}:{root}", "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.fixture
def cli_case(make_case, monkeypatch):
    c = make_case()
    monkeypatch.chdir(c.root)
    monkeypatch.setenv("IDSP_USER", "pim")
    return c


def _as(monkeypatch, user):
    monkeypatch.setenv("IDSP_USER", user)


def test_full_review_through_the_cli(cli, cli_case, monkeypatch, tmp_path, kit):
    code, out, _ = cli("ethics", "init", "--json")
    assert code == 0 and json.loads(out)["blocking"] > 0
    code, out, _ = cli("ethics", "status", "--json")
    assert json.loads(out)["status"] == "draft"

    keys = {}
    for user, role in (("alice", "jurist"), ("bob", "privacy-officer"), ("carol", "gemandateerd-verantwoordelijke")):
        code, out, _ = cli("ethics", "keygen", "--key", str(tmp_path / f"{user}.pem"), "--json")
        assert code == 0
        pub = json.loads(out)["public_key"]
        keys[user] = (tmp_path / f"{user}.pem", role)
        assert cli("ethics", "reviewer", "add", user, "--role", role, "--public-key", pub)[0] == 0
    code, out, _ = cli("ethics", "reviewer", "list", "--json")
    assert all(r["vouched"] for r in json.loads(out)["reviewers"])

    code, out, _ = cli("ethics", "answer", "ak.grw-02", "voldaan", "-r", "Getoetst.", "-e", "docs/rechtvaardiging.md", "--json")
    assert code == 0 and json.loads(out)["evidence"][0]["path"] == "docs/rechtvaardiging.md"
    kit.answer_all(cli_case, only_blocking=True)
    assert cli("ethics", "submit")[0] == 0
    assert cli("ethics", "verify")[0] == 1

    for user, (key, role) in keys.items():
        _as(monkeypatch, user)
        code, out, err = cli("ethics", "approve", "--role", role, "--key", str(key), "--json")
        assert code == 0, err
    assert json.loads(out)["status"] == "approved"

    code, out, _ = cli("ethics", "verify", "--json")
    assert code == 0 and json.loads(out)["allowed"] is True
    assert cli("ethics", "verify", "-d", "synthetisch")[0] == 0

    # Change an answer: the gate closes and says why, in plain words.
    _as(monkeypatch, "pim")
    cli("ethics", "answer", "ak.grw-02", "deels", "-r", "Nieuwe bevinding.")
    code, out, _ = cli("ethics", "verify")
    assert code == 1
    assert "gate closed" in out and "ak.grw-02 changed after approval" in out

    code, out, _ = cli("ethics", "audit", "verify", "--json")
    assert code == 0
    events = [e["event"] for e in json.loads(cli("ethics", "audit", "show", "--tail", "0", "--json")[1])]
    for event in ("reviewer.registered", "checklist.initialised", "answered", "submitted", "approved", "gate.checked"):
        assert event in events

    code, _, _ = cli("ethics", "render", "--format", "html", "--out", str(tmp_path / "c.html"))
    assert code == 0 and "<!DOCTYPE html>" in (tmp_path / "c.html").read_text()


def test_own_approval_is_refused_with_exit_1(cli, cli_case, monkeypatch, tmp_path, kit):
    cli("ethics", "init")
    _, out, _ = cli("ethics", "keygen", "--key", str(tmp_path / "pim.pem"), "--json")
    cli("ethics", "reviewer", "add", "pim", "--role", "jurist", "--public-key", json.loads(out)["public_key"])
    kit.answer_all(cli_case, only_blocking=True)
    cli("ethics", "submit")
    code, _, err = cli("ethics", "approve", "--role", "jurist", "--key", str(tmp_path / "pim.pem"))
    assert code == 1 and "four-eyes" in err and "Traceback" not in err


def test_audit_verify_exits_1_on_a_tampered_log(cli, cli_case, idsp_home):
    cli("ethics", "init")
    log = idsp_home / "audit" / "audit.jsonl"
    log.write_text(log.read_text().replace('"actor": "pim"', '"actor": "eve"'))
    code, out, _ = cli("ethics", "audit", "verify")
    assert code == 1 and "was edited" in out


def test_malformed_yaml_exit_2_with_file_and_line(cli, cli_case):
    cli("ethics", "init")
    path = cli_case.root / "ethics" / "checklist.yaml"
    path.write_text(path.read_text() + "items: [\n")
    code, _, err = cli("ethics", "status")
    assert code == 2 and "checklist.yaml, line" in err and "Traceback" not in err


def test_unknown_item_and_bad_value_exit_2(cli, cli_case):
    cli("ethics", "init")
    code, _, err = cli("ethics", "answer", "ak.nope", "voldaan")
    assert code == 2 and "no item 'ak.nope'" in err
    code, _, err = cli("ethics", "answer", "ak.grw-02", "prima")
    assert code == 2 and "Answer one of: voldaan, deels, niet_voldaan, nvt" in err


def test_answers_from_a_file_all_or_nothing(cli, cli_case, tmp_path):
    cli("ethics", "init")
    good = {"ak.grw-02": {"value": "voldaan", "rationale": "Getoetst.", "evidence": ["docs/rechtvaardiging.md"]},
            "iama.1.3.1": {"value": "nee"}}
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(good))
    code, out, err = cli("ethics", "answer", "--from", str(tmp_path / "a.yaml"), "--json")
    assert code == 0, err
    assert [a["key"] for a in json.loads(out)] == ["ak.grw-02", "iama.1.3.1"]
    bad = {"ak.grw-01": {"value": "voldaan"}, "ak.grw-02": {"value": "misschien"}}
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(bad))
    code, _, err = cli("ethics", "answer", "--from", str(tmp_path / "b.yaml"))
    assert code == 2 and "misschien" in err
    code, out, _ = cli("ethics", "status", "--items", "--json")
    answers = {i["key"]: i["answer"] for i in json.loads(out)["items"]}
    assert answers["ak.grw-01"] is None and answers["ak.grw-02"] == "voldaan"  # nothing of the bad file written


def test_export_register(cli, cli_case, tmp_path):
    cli("ethics", "init")
    code, _, err = cli("ethics", "export-register", "--out", str(tmp_path / "e.json"))
    assert code == 2 and "contact_email" in err
    code, _, _ = cli("ethics", "export-register", "--out", str(tmp_path / "e.json"), "--contact", "x@ilt.example.nl")
    assert code == 0 and json.loads((tmp_path / "e.json").read_text())["standard_version"] == "1.0"


def test_prescan_and_catalogue_commands(cli, cli_case):
    code, out, _ = cli("ethics", "prescan", "--json")
    assert code == 0 and json.loads(out)["dpia"] == "niet_nodig"
    code, out, _ = cli("ethics", "catalogue", "list", "--json")
    assert code == 0 and {r["id"]: r["items"] for r in json.loads(out)}["ak-vereisten"] == 63


def test_no_case_here_exit_2(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("ethics", "status")
    assert code == 2 and "no case project here" in err


def test_case_yaml_profile_error_points_at_case_yaml(cli, cli_case):
    data = yaml.safe_load((cli_case.root / "case.yaml").read_text())
    data["profile"]["dpia_prescan"] = {"edpb_typo": True}
    (cli_case.root / "case.yaml").write_text(yaml.safe_dump(data))
    code, _, err = cli("ethics", "init")
    assert code == 2 and "edpb_typo" in err and "case.yaml" in err
