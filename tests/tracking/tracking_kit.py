"""Helpers for the tracking tests: `idsp tracking serve` as a real subprocess on a free port,
and a case folder whose checklist is answered and approved through legal_ethics's own API."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml
from idsp.case import Case

from legal_ethics import checklist, workflow

IDSP = [sys.executable, "-c", "from idsp.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, proc: subprocess.Popen, url: str, home: Path, log: Path):
        self.proc, self.url, self.home, self.log = proc, url, home, log

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                return self.proc.wait()
        return self.proc.returncode


def start_server(home: Path, *args: str, env: dict | None = None, timeout: float = 180) -> Server:
    """`idsp tracking serve` as a subprocess on a free port; waits for /health."""
    port = free_port()
    log = home / "serve.log"
    home.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, "IDSP_HOME": str(home), **(env or {})}
    full_env.pop("IDSP_CONFIG", None)
    proc = subprocess.Popen(
        [*IDSP, "tracking", "serve", "--port", str(port), *args],
        env=full_env,
        stdout=open(log, "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        start_new_session=True,  # so a test can kill the whole tree if the server misbehaves
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return Server(proc, url, home, log)
        except OSError:
            time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    raise RuntimeError(f"server not up in {timeout}s: {log.read_text()[-3000:]}")


# -- a case with a checklist (same shape as the legal_ethics tests use) --

DATA = "kvk_pseudo,product,uitkomst\nP001,speelgoed,1\nP002,lader,0\n"


def case_tree(profile: dict | None = None, *, case_type: str = "generic", policy: dict | None = None) -> dict:
    spec = {
        "id": "ce-risico",
        "title": "Risicoselectie CE-markering",
        "zaaknummer": "ILT-2026-004512",
        "inspectorates": ["ILT"],
        "case_type": case_type,
        "purpose": "Risicogestuurd markttoezicht op CE-markering van producten.",
        "legal_basis": [{"act": "Warenwet", "article": "32", "url": "https://wetten.overheid.nl/BWBR0001969"}],
        "owners": [{"name": "Pim Projectleider", "username": "pim", "role": "owner"}],
        "profile": profile if profile is not None else {
            "personal_data": True, "risk_profiling": "companies", "ai_act_risk": "minimal",
        },
        "datasets": [
            {"name": "inspecties", "path": "data/inspecties.csv", "personal_data": True, "synthetic": False},
            {"name": "synthetisch", "path": "data/synthetisch.csv", "personal_data": False, "synthetic": True},
        ],
    }
    if policy:
        spec["policy"] = policy
    md5 = hashlib.md5(DATA.encode()).hexdigest()
    return {
        "case.yaml": yaml.safe_dump(spec, sort_keys=False),
        "data": {
            "inspecties.csv": DATA,
            "inspecties.csv.dvc": f"outs:\n- md5: {md5}\n  size: {len(DATA)}\n  path: inspecties.csv\n",
            "synthetisch.csv": "a,b\n1,2\n",
        },
        "src": {"train.py": "print('train')\n"},
        "params.yaml": "seed: 42\n",
        "dvc.yaml": "stages:\n  train:\n    cmd: python src/train.py\n",
        "docs": {"dpia.pdf": b"%PDF-1.4 fake dpia\n", "rechtvaardiging.md": "# Rechtvaardigingstoets\n"},
        "reports": {"fairness.json": '{"selection_rate": {"ratio": 0.91}, "groups": [{"fpr": 0.1}]}'},
    }


def build_tree(root: Path, tree: dict) -> Path:
    """Same as tests/conftest.py's helper (conftest modules cannot import each other)."""
    root.mkdir(parents=True, exist_ok=True)
    for name, value in tree.items():
        path = root / name
        if isinstance(value, dict):
            build_tree(path, value)
        elif isinstance(value, bytes):
            path.write_bytes(value)
        else:
            path.write_text(value, encoding="utf-8")
    return root


def passing_value(item):
    if item.answer_type == "choice":
        return item.pass_values[0] if item.pass_values else item.options[0]
    if item.answer_type == "yes_no":
        return "yes" if item.expected is not False else "no"
    if item.answer_type == "number":
        return str(item.minimum if item.minimum is not None else 1)
    if item.answer_type == "date":
        return "2026-01-31"
    if item.answer_type == "text":
        return "Beschreven in het projectplan, paragraaf 2."
    return None


EVIDENCE = {
    "biasanalyse-rapport": "reports/fairness.json",
    "rechtvaardigingstoets": "docs/rechtvaardiging.md",
    "discriminatieprotocol": "docs/rechtvaardiging.md",
    "DPIA-document": "docs/dpia.pdf",
}


def answer_all(case: Case, actor: str = "pim", only_blocking: bool = False) -> None:
    defn = checklist.load_definition(case)
    for item in defn.items:
        if only_blocking and not item.blocking:
            continue
        evidence = [EVIDENCE[e] for e in item.required_evidence]
        value = passing_value(item)
        workflow.answer(case, item.key, value, rationale="Zie bewijs.", evidence=evidence, actor=actor)


def approve_all(case: Case, keys: dict[str, Path], people=("alice", "bob", "carol")) -> list:
    roles = {"alice": "jurist", "bob": "privacy-officer", "carol": "gemandateerd-verantwoordelijke", "dave": "ethicus"}
    return [
        workflow.decide(case, "approve", role=roles[p], key_path=keys[p], actor=p) for p in people
    ]
