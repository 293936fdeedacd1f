"""A case folder with a checklist, answered and approved through legal_ethics's own API
with real reviewer keys: shared by the legal_ethics, tracking and case-kit tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml
from idsp.case import Case

from legal_ethics import checklist, workflow

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
    entries = [
        {"key": item.key, "value": passing_value(item), "rationale": "Zie bewijs.",
         "evidence": [EVIDENCE[e] for e in item.required_evidence]}
        for item in defn.items if item.blocking or not only_blocking
    ]
    workflow.answer_many(case, entries, actor=actor)


def approve_all(case: Case, keys: dict[str, Path], people=("alice", "bob", "carol")) -> list:
    roles = {"alice": "jurist", "bob": "privacy-officer", "carol": "gemandateerd-verantwoordelijke", "dave": "ethicus"}
    return [
        workflow.decide(case, "approve", role=roles[p], key_path=keys[p], actor=p) for p in people
    ]
