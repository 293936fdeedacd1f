"""`idsp data` and `idsp doctor` through the CLI, in-process."""

from __future__ import annotations

import json
import subprocess

import pandas as pd
from idsp.data import read_table
from testkit.identifiers import make_bsn


def _csv(tmp_path, rng_seed=7):
    import random

    rng = random.Random(rng_seed)
    rows = [f"{make_bsn(rng)};naam{i};{i}" for i in range(5)]
    path = tmp_path / "in.csv"
    path.write_text("bsn;naam;n\n" + "\n".join(rows) + "\n12;fout;9\n", encoding="utf-8")
    return path, [r.split(";")[0] for r in rows]


def test_scan_fail_on_pii_exit_codes(cli, tmp_path):
    path, bsns = _csv(tmp_path)
    code, out, err = cli("data", "scan", str(path), "--json")
    assert code == 0
    report = json.loads(out)[0]
    assert report["findings"][0]["kind"] == "bsn" and report["findings"][0]["count"] == 5
    assert not any(b in out for b in bsns)
    code, _, err = cli("data", "scan", str(path), "--fail-on-pii")
    assert code == 1 and "in.csv" in err
    clean = tmp_path / "clean.csv"
    clean.write_text("a;b\nx;1\n")
    assert cli("data", "scan", str(clean), "--fail-on-pii")[0] == 0


def test_scan_text_files_and_allow_mark(cli, tmp_path):
    notebook = tmp_path / "analyse.py"
    notebook.write_text('mail = "jan@voorbeeld.nl"\nfixture = "jan@voorbeeld.nl"  # idsp: allow-pii\n')
    code, out, _ = cli("data", "scan", str(notebook), "--json", "--fail-on-pii")
    assert code == 1
    finding = json.loads(out)[0]["findings"][0]
    assert finding["kind"] == "email" and finding["count"] == 1 and "line 1" in finding["examples"][0]


def test_keygen_pseudonymise_round(cli, tmp_path, idsp_home):
    path, bsns = _csv(tmp_path)
    code, out, _ = cli("data", "keygen", "bsn-test", "--json")
    assert code == 0
    key_id = json.loads(out)["key_id"]
    assert (idsp_home / "keys" / "bsn-test.key").stat().st_mode & 0o777 == 0o600
    target = tmp_path / "out.parquet"
    code, _, err = cli("data", "pseudonymise", str(path), str(target), "--columns", "bsn", "--domain", "bsn-test")
    assert code == 1 and "data row 6" in err and not target.exists()
    code, out, _ = cli("data", "pseudonymise", str(path), str(target), "--columns", "bsn",
                       "--domain", "bsn-test", "--allow-invalid", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["key_id"] == key_id and report["invalid_count"] == 1
    frame = read_table(target)
    assert frame["bsn"].str.len().dropna().eq(64).all() and pd.isna(frame["bsn"].iloc[5])
    assert not set(bsns) & set(frame["bsn"].dropna())
    assert cli("data", "scan", str(target), "--fail-on-pii")[0] == 0


def test_pseudonymise_without_key_is_usage_error(cli, tmp_path):
    path, _ = _csv(tmp_path)
    code, out, err = cli("data", "pseudonymise", str(path), str(tmp_path / "o.parquet"),
                         "--columns", "bsn", "--domain", "nokey")
    assert code == 2 and "idsp data keygen nokey" in err and "Traceback" not in err


def test_doctor_fails_on_open_key_then_passes_keys(cli, idsp_home, monkeypatch):
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    assert cli("data", "keygen", "d1")[0] == 0
    (idsp_home / "keys" / "d1.key").chmod(0o640)
    code, out, _ = cli("doctor", "--json")
    results = {r["id"]: r for r in json.loads(out)["results"]}
    assert code == 1
    assert results["IDSP-PRIV-01"]["status"] == "fail" and "0640" in results["IDSP-PRIV-01"]["detail"]
    (idsp_home / "keys" / "d1.key").chmod(0o600)
    code, out, _ = cli("doctor", "--json")
    assert {r["id"]: r for r in json.loads(out)["results"]}["IDSP-PRIV-01"]["status"] == "pass"


def test_doctor_secret_env_and_case_hooks(cli, idsp_home, monkeypatch, tmp_path):
    monkeypatch.setenv("MY_API_TOKEN", "x")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "hub-injected")
    case = tmp_path / "case"
    case.mkdir()
    (case / "case.yaml").write_text("id: abc\n")
    subprocess.run(["git", "init", "-q", str(case)], check=True)
    monkeypatch.chdir(case)
    code, out, _ = cli("doctor", "--json")
    data = json.loads(out)
    results = {r["id"]: r for r in data["results"]}
    assert code == 1 and data["case"] == str(case)
    assert results["IDSP-SEC-01"]["status"] == "fail"
    assert "MY_API_TOKEN" in results["IDSP-SEC-01"]["detail"]
    assert "JUPYTERHUB_API_TOKEN" not in results["IDSP-SEC-01"]["detail"]
    assert results["IDSP-CASE-01"]["status"] == "fail"
    assert results["IDSP-DVC-01"]["status"] == "fail"


def test_requirements_are_complete_data():
    from idsp.doctor import CHECKS, load_requirements

    reqs = load_requirements()
    assert {r.check for r in reqs} == set(CHECKS)
    assert len({r.id for r in reqs}) == len(reqs)
    assert all(r.level in ("must", "should") and r.why and r.how for r in reqs)
