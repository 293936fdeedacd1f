"""Benchmark (issue 11): the platform service's start page with 200 cases on the platform.

200 case folders are made in a temp dir through the platform's own code (case.yaml, then
`legal_ethics.init_checklist`, answers, `submit`, signed `approve`/`reject` with real reviewer
keys): about two thirds concept, the rest submitted, approved or rejected. One user is a
member of all 200 (the worst case: every status on one page). The real service app
(tornado, JupyterHub's HubOAuth against a stand-in token table, tests/service/servicekit)
answers GET /services/idsp/ on loopback; the time is the request's round trip, an upper
bound of the server time. Measured: the first page (empty status cache: every checklist
read and judged), the page with a warm cache, and the page after one case changed.
Target (issue 11): under 300 ms.

The checklists are judged with the test platform's own reviewer registry and audit log
(local mode) instead of the hub registry: the same Overview, StartPage and template code.

Run: .venv/bin/python bench/bench_start_page.py [--quick] [--cases 200] [--repeat 30]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "platform"), str(ROOT), str(ROOT / "tests")]

TARGET_MS = 300.0
TEMPLATE_ID = "ce-sjabloon"
USER = "bench"


def _make_cases(home: Path, n: int) -> tuple[list[dict], Counter]:
    """n case folders: ~2/3 concept (one answered checklist copied under new ids: the same
    files `init_checklist` writes), the rest made one by one through the full workflow."""
    from idsp.case import Case
    from testkit.ethics import answer_all, approve_all, case_tree
    from testkit.files import build_tree

    from legal_ethics import init_checklist, reviewers, workflow

    keys = {}
    for user, roles in {"alice": ["jurist"], "bob": ["privacy-officer"],
                        "carol": ["gemandateerd-verantwoordelijke"]}.items():
        pair = reviewers.keygen(home / "keys" / f"{user}.pem")
        reviewers.register(user, roles, pair.public_key, name=user.title(), actor="admin")
        keys[user] = pair.path

    def fresh(case_id: str) -> Case:
        tree = case_tree()
        tree["case.yaml"] = tree["case.yaml"].replace("id: ce-risico", f"id: {case_id}").replace(
            "owners:", f"members: [{{name: Bench, username: {USER}}}]\nowners:")
        case = Case.open(build_tree(home / "cases" / case_id, tree))
        init_checklist(case, actor="pim")
        return case

    template = fresh(TEMPLATE_ID)
    answer_all(template, actor=USER, only_blocking=True)
    kinds = ["submitted"] * (n // 10) + ["approved"] * (n // 10) + ["rejected"] * (n // 20)
    kinds += ["concept"] * (n - len(kinds))
    entries = []
    for i, kind in enumerate(kinds):
        case_id = f"ce-{i:04d}"
        if kind == "concept":
            dst = home / "cases" / case_id
            shutil.copytree(template.root, dst)
            for rel in ("case.yaml", "ethics/checklist.yaml", "ethics/answers.yaml"):
                p = dst / rel
                p.write_text(p.read_text().replace(TEMPLATE_ID, case_id))
        else:
            case = fresh(case_id)
            answer_all(case, actor=USER, only_blocking=True)
            workflow.submit(case, actor="pim")
            if kind == "approved":
                approve_all(case, keys)
            elif kind == "rejected":
                workflow.decide(case, "reject", role="jurist", key_path=keys["alice"], actor="alice",
                                comment="De grondslag ontbreekt.")
        entries.append({"id": case_id, "path": str(home / "cases" / case_id), "title": f"Zaak {i}",
                        "zaaknummer": f"ILT-2026-{i:06d}", "members": [USER]})
    shutil.rmtree(template.root)
    return entries, Counter(kinds)


def _ms(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
    return f"median {statistics.median(values):7.1f} ms   p95 {p95:7.1f} ms   (n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="fewer repeats, one first page (the 200 cases stay)")
    args = parser.parse_args()
    repeat = 5 if args.quick else args.repeat

    work = Path(tempfile.mkdtemp(prefix="idsp-bench-start-"))
    os.environ["IDSP_HOME"] = str(work / "home")
    os.environ.pop("IDSP_CONFIG", None)
    try:
        import httpx
        import yaml
        from idsp.config import load_config
        from idsp.service.overview import Overview
        from service.servicekit import ServedService, user_model

        from legal_ethics import audit, reviewers

        t0 = time.perf_counter()
        entries, kinds = _make_cases(work / "home", args.cases)
        made = time.perf_counter() - t0
        index = work / "index.yaml"
        index.write_text(yaml.safe_dump({"cases": entries}))
        config = load_config()
        log = audit.log_path(config)
        trust = [log, log.with_name(log.name + ".head"), reviewers.registry_path(config)]
        tokens = {"tok-bench": user_model(USER, [])}
        with ServedService(work / "state", index, work / "home" / "cases", tokens) as svc:
            cases = svc.service.cases
            if hasattr(cases, "import_index"):  # the case registry: the index imported once
                cases.import_index()
            for thread in threading.enumerate():  # the service's own warm-up: not measured
                if thread.name == "idsp-warm":
                    thread.join()
            overview = Overview(lambda: config, lambda: trust)
            svc.service.overview = overview
            client = svc.client("tok-bench")
            client.timeout = httpx.Timeout(600)  # the first page with an empty cache takes seconds

            def get() -> float:
                t = time.perf_counter()
                r = client.get("")
                elapsed = (time.perf_counter() - t) * 1000
                assert r.status_code == 200, r.status_code
                assert r.text.count('class="idsp-case"') == len(entries), "not every case on the page"
                return elapsed

            cold = []
            for _ in range(1 if args.quick else 3):
                overview._cache.clear()
                cold.append(get())
            warm = [get() for _ in range(repeat)]
            changed = []
            answers = Path(entries[0]["path"]) / "ethics" / "answers.yaml"
            for _ in range(max(3, repeat // 5)):
                os.utime(answers)  # one case changed: only it is judged again
                changed.append(get())
            page = client.get("").text
        statuses = Counter(s.split('"')[0] for s in page.split('data-status="')[1:])
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"Start page, {len(entries)} cases on the platform, one member of all of them "
          f"(made in {made:.0f} s: {dict(kinds)}; on the page: {dict(statuses)})")
    print(f"  first page, empty cache   {_ms(cold)}")
    print(f"  warm cache                {_ms(warm)}")
    print(f"  after one case changed    {_ms(changed)}")
    verdict = "met" if statistics.median(warm) < TARGET_MS and statistics.median(changed) < TARGET_MS else "NOT met"
    print(f"  target (issue 11): under {TARGET_MS:.0f} ms with a warm cache and after a change: {verdict}")


if __name__ == "__main__":
    main()
