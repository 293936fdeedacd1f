"""`idsp tracking serve`: refuses unsafe auth, names a bad backend, runs on PostgreSQL with
login, and stops every child process on SIGTERM."""

from __future__ import annotations

import os
import secrets
import signal
import time
import urllib.error
import urllib.request

import psutil
import pytest
from testkit.mlflow_server import start_server

POSTGRES = os.environ.get("IDSP_TEST_POSTGRES_URI")


def test_auth_without_admin_credentials_is_refused(cli, monkeypatch):
    for var in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_AUTH_ADMIN_USERNAME", "MLFLOW_AUTH_ADMIN_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    code, out, err = cli("tracking", "serve", "--auth")
    assert code == 2 and "MLFLOW_TRACKING_PASSWORD" in err
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "password1234")
    code, out, err = cli("tracking", "serve", "--auth")
    assert code == 2 and "12 characters" in err


def test_unreachable_postgres_backend_is_named_without_its_password(cli):
    code, out, err = cli(
        "tracking", "serve", "--backend-store-uri", "postgresql://idsp:geheim@127.0.0.1:1/mlflow"
    )
    assert code == 2
    text = " ".join(err.split())
    assert "postgresql://idsp:***@127.0.0.1:1/mlflow" in text and "geheim" not in text


@pytest.fixture
def postgres_db():
    if not POSTGRES:
        if os.environ.get("CI"):
            pytest.fail("IDSP_TEST_POSTGRES_URI is not set in CI; scripts/test.sh starts PostgreSQL")
        pytest.skip("no PostgreSQL (run through scripts/test.sh)")
    import psycopg2

    name = f"mlflow_{secrets.token_hex(4)}"
    conn = psycopg2.connect(POSTGRES)
    conn.autocommit = True
    conn.cursor().execute(f"CREATE DATABASE {name}")
    conn.close()
    yield POSTGRES.rsplit("/", 1)[0] + "/" + name


@pytest.mark.postgres
@pytest.mark.slow
def test_postgres_backend_with_login_and_a_clean_stop(postgres_db, case, tmp_path, monkeypatch):
    import psycopg2

    password = secrets.token_urlsafe(18)
    creds = {"MLFLOW_TRACKING_USERNAME": "idsp-admin", "MLFLOW_TRACKING_PASSWORD": password}
    server = start_server(tmp_path / "srv", "--backend-store-uri", postgres_db, "--auth", env=creds)
    try:
        children = psutil.Process(server.proc.pid).children(recursive=True)
        assert len(children) >= 2  # mlflow server + uvicorn at least
        with pytest.raises(urllib.error.HTTPError) as anonymous:
            urllib.request.urlopen(server.url + "/api/2.0/mlflow/experiments/search?max_results=1", timeout=10)
        assert anonymous.value.code == 401

        for key, value in creds.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("IDSP_TRACKING__URI", server.url)
        with case.run("op-postgres", datasets=["synthetisch"]) as run:
            run.log_metric("auc", 0.75)
        with psycopg2.connect(postgres_db) as conn, conn.cursor() as cur:
            cur.execute("SELECT status FROM runs WHERE run_uuid = %s", (run.run_id,))
            assert cur.fetchone() == ("FINISHED",)
            cur.execute("SELECT value FROM tags WHERE run_uuid = %s AND key = 'idsp.approval'", (run.run_id,))
            assert cur.fetchone() == ("none",)
    finally:
        server.proc.send_signal(signal.SIGTERM)
        code = server.proc.wait(timeout=60)
    assert code == 0
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children):
        time.sleep(0.2)
    alive = [c.pid for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"server children survived SIGTERM: {alive}"
