"""Benchmark (issue 12): the review page of a 300-item checklist with 20 evidence files, and
recording one signed decision.

One case is made through the platform's own code (case.yaml, `legal_ethics.init_checklist`);
its checklist is widened to 300 items by copying the profile's items under new keys, every
item is answered (`workflow.answer_many`) with 20 evidence files spread over the answers
(JSON and Markdown reports, shown inline on the page), and submitted. The real service app
(tornado, JupyterHub's HubOAuth against a stand-in token table, tests/service/servicekit)
answers GET /services/idsp/review/<case>/use on loopback; a decision is the real GET of the
payload, an Ed25519 signature, and the POST that the service verifies and records. Times
are round trips, an upper bound of the server time.
Targets (issue 12): page under 300 ms, decision recorded under 500 ms.

Run: .venv/bin/python bench/bench_review_page.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "platform"), str(ROOT), str(ROOT / "tests")]

PAGE_MS, DECISION_MS = 300.0, 500.0
ITEMS, EVIDENCE = 300, 20


def _case(tmp: Path):
    import yaml
    from idsp.case import Case
    from testkit.ethics import case_tree, passing_value
    from testkit.files import build_tree

    from legal_ethics import checklist, init_checklist, workflow

    root = build_tree(tmp / "cases" / "ce-risico", case_tree())
    case = Case.open(root)
    init_checklist(case, actor="pim")
    defn = checklist.load_definition(case)
    items = list(defn.items)
    i = 0
    while len(items) < ITEMS:
        src = defn.items[i % len(defn.items)]
        items.append(src.model_copy(update={"key": f"{src.key}.x{i}", "required_evidence": ()}))
        i += 1
    checklist.save(case, checklist.CHECKLIST_FILE, defn.model_copy(update={"items": tuple(items)}))
    reports = root / "reports"
    files = []
    for n in range(EVIDENCE):
        path = reports / (f"rapport-{n}.json" if n % 2 else f"modelkaart-{n}.md")
        path.write_text(f'{{"metric": {n}, "groups": [1, 2, 3]}}\n' if n % 2 else f"# Modelkaart {n}\n" + "tekst " * 400)
        files.append(str(path.relative_to(root)))
    entries = []
    for k, item in enumerate(items):
        value = passing_value(item) if item.answer_type != "metric_check" else None
        evidence = [files[k % EVIDENCE]] if k < 60 else []
        evidence += ["docs/dpia.pdf"] * bool(item.required_evidence and "DPIA-document" in item.required_evidence)
        evidence += ["reports/fairness.json"] * bool(item.required_evidence and "biasanalyse-rapport" in item.required_evidence)
        evidence += ["docs/rechtvaardiging.md"] * bool(set(item.required_evidence) & {"rechtvaardigingstoets", "discriminatieprotocol"})
        entries.append({"key": item.key, "value": value, "rationale": "Zie bewijs.", "evidence": evidence})
    workflow.answer_many(case, entries, actor="pim")
    workflow.submit(case, actor="pim", purpose="use")
    index = tmp / "index.yaml"
    index.write_text(yaml.safe_dump({"cases": [{"id": "ce-risico", "path": str(root), "members": ["pim", "anna", "bob", "carol", "dirk", "root"]}]}))
    return case, index


def _ms(samples: list[float]) -> str:
    return (f"median {statistics.median(samples):.0f} ms, max {max(samples):.0f} ms, "
            f"p90 {sorted(samples)[max(0, int(len(samples) * 0.9) - 1)]:.0f} ms (n={len(samples)})")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="idsp-bench-review-"))
    os.environ["IDSP_HOME"] = str(tmp / "home")
    for var in ("JUPYTERHUB_API_TOKEN", "JUPYTERHUB_API_URL", "IDSP_SERVICE_URL", "IDSP_CONFIG"):
        os.environ.pop(var, None)
    try:
        from service.servicekit import ServedService, user_model  # tests/service

        from legal_ethics import checklist

        case, index = _case(tmp)
        n_items = len(checklist.load_definition(case).items)
        tokens = {f"tok-{n}": user_model(n, ["case-ce-risico"]) for n in ("pim", "anna", "bob", "carol", "dirk", "root")}
        tokens["tok-root"]["admin"] = True
        from service.test_review_api import Key, _cookie

        with ServedService(tmp / "state", index, tmp / "cases", tokens) as svc:
            key = Key()
            svc.client("tok-anna").post("api/reviewers/enrol", json={"public_key": key.public, "source": "webcrypto"})
            svc.client("tok-root").post("api/reviewers/anna/approve", json={"roles": ["jurist"]})
            page = svc.client()
            page.cookies.update(_cookie(svc, "tok-anna"))
            r = page.get("review/ce-risico/use")
            assert r.status_code == 200 and "Wat is er veranderd" in r.text, r.text[:500]
            shown = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                r = page.get("review/ce-risico/use")
                shown.append((time.perf_counter() - t0) * 1000)
            size = len(r.content) // 1024
            # a real review: each required role approves once, by a different reviewer
            prepared, decided = [], []
            roles = checklist.load_definition(case).signoff_roles
            for role in roles:
                who = {"jurist": "anna", "privacy-officer": "bob", "gemandateerd-verantwoordelijke": "carol"}.get(role, "dirk")
                k = key if who == "anna" else Key()
                if who != "anna":
                    svc.client(f"tok-{who}").post("api/reviewers/enrol", json={"public_key": k.public, "source": "webcrypto"})
                    svc.client("tok-root").post(f"api/reviewers/{who}/approve", json={"roles": [role]})
                api = svc.client(f"tok-{who}")
                t0 = time.perf_counter()
                p = api.get("api/cases/ce-risico/decisions/payload",
                            params={"purpose": "use", "kind": "approve", "role": role, "public_key": k.public}).json()
                assert "payload" in p, (who, role, p)
                prepared.append((time.perf_counter() - t0) * 1000)
                body = {"purpose": "use", "kind": "approve", "payload": p["payload"], "signature": k.sign(p["canonical"])}
                t0 = time.perf_counter()
                r = api.post("api/cases/ce-risico/decisions", json=body)
                decided.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 201, r.text
            assert r.json()["status"] == "approved", r.json()
        print(f"review page ({n_items} items, {EVIDENCE} evidence files, {size} KiB): {_ms(shown)} "
              f"(target < {PAGE_MS:.0f} ms)")
        print(f"payload shown before signing (GET): {_ms(prepared)}")
        print(f"decision recorded (POST: verified, checked, written, logged): {_ms(decided)} "
              f"(target < {DECISION_MS:.0f} ms)")
        ok = statistics.median(shown) < PAGE_MS and statistics.median(decided) < DECISION_MS
        print("OK" if ok else "OVER TARGET")
        return 0 if ok else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
