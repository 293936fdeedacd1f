"""`idsp case new|status` refusals and the fleet view; nothing heavy behind --help."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import pytest
from casekit import REPO, ZAAK, build_case_folder, new_args

HEAVY = ("pandas", "great_expectations", "mlflow", "dvc", "sklearn", "copier")


def test_case_help_imports_nothing_heavy():
    code = (
        "import sys\nfrom idsp.cli import run\n"
        "rc = run(['case', '--help'])\n"
        "for sub in ('new', 'update', 'status'):\n"
        "    rc = rc or run(['case', sub, '--help'])\n"
        "print('MODULES', ','.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    loaded = set(proc.stdout.rsplit("MODULES ", 1)[1].strip().split(","))
    assert "typer" in loaded
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


@pytest.mark.parametrize(
    "extra,match",
    [
        (["--data", "zaaknummer=ILT-26-1"], "zaaknummer"),
        (["--type", "asbest"], "--type"),
        (["--data", "inspectorates=AFM"], "inspectorates"),
        (["--data", "nonsense"], "not KEY=VALUE"),
    ],
)
def test_bad_answers_are_refused_before_anything_is_written(cli, tmp_path, idsp_home, extra, match):
    dest = tmp_path / "cases"
    code, out, err = cli(*new_args("bridge-check", dest), *extra)
    assert code == 2, (out, err)
    assert match in err and "Traceback" not in err
    assert not dest.exists()
    assert list(idsp_home.iterdir()) == []  # no index, no remote, nothing


def test_bad_name_is_refused(cli, tmp_path):
    code, _, err = cli(*new_args("Bridge_Check", tmp_path / "cases"))
    assert code == 2 and "NAME" in err and "lower-case" in err
    assert not (tmp_path / "cases").exists()


def test_existing_folder_is_refused_and_left_alone(cli, tmp_path, idsp_home):
    dest = tmp_path / "cases"
    (dest / "bridge-check").mkdir(parents=True)
    (dest / "bridge-check" / "notes.txt").write_text("mine")
    code, _, err = cli(*new_args("bridge-check", dest))
    assert code == 2 and "already exists" in err
    assert [p.name for p in (dest / "bridge-check").iterdir()] == ["notes.txt"]
    assert list(idsp_home.iterdir()) == []


def test_a_failure_half_way_removes_the_case_again(cli, tmp_path, idsp_home, monkeypatch):
    from idsp import case_projects
    from idsp.errors import UserError

    def broken_dvc(repo, *commands):  # BrokenDvc: dvc init fails on this machine
        raise UserError("`dvc init` failed: simulated", where=str(repo))

    monkeypatch.setattr(case_projects, "_dvc", broken_dvc)
    dest = tmp_path / "cases"
    code, _, err = cli(*new_args("bridge-check", dest))
    assert code == 2 and "dvc init" in err
    assert not dest.exists()
    assert not (idsp_home / "cases" / "index.yaml").exists()


def test_status_reads_the_index_and_reports_broken_cases(cli, tmp_path):
    from idsp.case_index import record_in_index

    good = build_case_folder(tmp_path / "good-case", version="1.0.0")
    bad = build_case_folder(tmp_path / "bad-case", version="1.0.0", zaaknummer="nope")
    for path, name in ((good, "good-case"), (bad, "bad-case"), (tmp_path / "gone", "gone-case")):
        record_in_index({"id": name, "path": str(path)})
    code, out, err = cli("case", "status", "--json", "--no-runs")
    assert code == 0, err
    data = json.loads(out)
    by_id = {c["id"]: c for c in data["cases"]}
    assert by_id["good-case"]["problem"] is None
    assert by_id["good-case"]["template_version"] == "1.0.0"
    assert "zaaknummer" in by_id["bad-case"]["problem"]
    assert "missing" in by_id["gone-case"]["problem"]


def test_status_shows_a_lagging_case(cli, tmp_path, template_copy, monkeypatch):
    from casekit import add_v2

    build_case_folder(tmp_path / "fleet" / "ilt" / "old-case", version="1.0.0")
    add_v2(template_copy)
    monkeypatch.setenv("IDSP_CASE_TEMPLATE", str(template_copy))
    code, out, _ = cli("case", "status", str(tmp_path / "fleet"), "--no-runs")
    assert code == 0
    assert "old-case" in out and "1.0.0 (behind)" in out
    assert "1 case(s) behind template 2.0.0" in out and "old-case\n" in out
    code, out, _ = cli("case", "status", str(tmp_path / "fleet"), "--json", "--no-runs")
    case = json.loads(out)["cases"][0]
    assert json.loads(out)["newest_template"] == "2.0.0"
    assert case["behind"] is True and case["template_version"] == "1.0.0"


class DeadTrackingServer(types.ModuleType):
    """idsp.tracking whose server does not answer (and counts how often it was asked)."""

    def __init__(self):
        super().__init__("idsp.tracking")
        self.asked = 0

    def last_run(self, case, *, config=None):
        self.asked += 1
        raise ConnectionError("connection refused on 127.0.0.1:5000")


class TrackingWithOneRun(types.ModuleType):
    def __init__(self):
        super().__init__("idsp.tracking")

    @staticmethod
    def last_run(case, *, config=None):
        return {
            "run_id": "abc123",
            "start_time": "2026-11-28T10:00:00",
            "status": "FINISHED",
            "official": False,
        }


@pytest.mark.parametrize(
    "tracking,expected",
    [
        (DeadTrackingServer, "tracking server not reachable"),
        (TrackingWithOneRun, "abc123"),
        (None, "tracking not available"),
    ],
)
def test_status_last_run_never_crashes(cli, tmp_path, monkeypatch, tracking, expected):
    build_case_folder(tmp_path / "fleet" / "run-case", version="1.0.0")
    build_case_folder(tmp_path / "fleet" / "second-case", version="1.0.0")
    module = tracking() if tracking else None  # None in sys.modules: the import fails
    monkeypatch.setitem(sys.modules, "idsp.tracking", module)
    code, out, err = cli("case", "status", str(tmp_path / "fleet"), "--json")
    assert code == 0, err
    for case in json.loads(out)["cases"]:
        shown = json.dumps([case["last_run"], case["last_run_note"]])
        assert expected in shown
    if tracking is DeadTrackingServer:
        assert module.asked == 1  # a dead server is asked once, not once per case
    code, out, _ = cli("case", "status", str(tmp_path / "fleet"))
    assert code == 0 and expected in out


def test_status_of_an_empty_folder(cli, tmp_path):
    code, out, _ = cli("case", "status", str(tmp_path), "--no-runs")
    assert code == 0 and "no case projects" in out
    code, _, err = cli("case", "status", str(tmp_path / "nope"))
    assert code == 2 and "no such folder" in err


def test_index_writes_are_atomic_and_keep_other_cases(tmp_path, idsp_home):
    from idsp.case_index import index_path, read_index, record_in_index

    record_in_index({"id": "a-case", "path": "/x/a"})
    record_in_index({"id": "b-case", "path": "/x/b"})
    record_in_index({"id": "a-case", "path": "/x/a", "template_version": "1.0.0"})
    assert [(c["id"], c.get("template_version")) for c in read_index()] == [
        ("a-case", "1.0.0"),
        ("b-case", None),
    ]
    leftovers = [p.name for p in index_path().parent.iterdir()]
    assert sorted(leftovers) == ["index.yaml", "index.yaml.lock"]
    assert ZAAK  # the shared example zaaknummer stays in one place


def test_interactive_new_asks_each_question_and_asks_again_after_a_bad_answer(
    cli, tmp_path, monkeypatch
):
    import io

    from idsp import case_projects

    made = {}

    def recording_new_case(name, answers, **kw):  # stands in for the slow git/DVC part
        made.update(answers)
        return case_projects.NewCase(name, tmp_path / name, "1.0.0", "remote", tmp_path, "none")

    monkeypatch.setattr(case_projects, "new_case", recording_new_case)
    replies = [
        "Bruggen",  # title
        "ILT-26-1",  # zaaknummer: refused, asked again
        "ILT-2026-000777",
        "ILT,RDI",  # inspectorates
        "Jan Jansen",  # project lead
        "ce_markering",  # case type
        "y",  # personal data
        "companies",  # risk profiling
        "inspecties",  # data sources
    ]
    stdin = io.StringIO("\n".join(replies) + "\n")
    stdin.isatty = lambda: True
    monkeypatch.setattr("sys.stdin", stdin)
    code, out, err = cli("case", "new", "bridge-check")
    assert code == 0, err
    assert "CODE-YYYY-NNNNNN" in err  # the refusal was shown, then the question again
    assert made["zaaknummer"] == "ILT-2026-000777"
    assert made["inspectorates"] == ["ILT", "RDI"]
    assert made["case_type"] == "ce_markering" and made["personal_data"] is True
    assert (made["title"], made["project_lead"]) == ("Bruggen", "Jan Jansen")
    assert made["risk_profiling"] == "companies" and made["data_sources"] == "inspecties"
