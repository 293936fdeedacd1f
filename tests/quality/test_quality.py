"""idsp.quality: GX 1.x suites from gx/, evidence files, masking, exit codes, lazy imports."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest
import yaml
from idsp import quality
from idsp.errors import QualityError, UserError
from testkit.files import build_tree

BSN = "111222333"  # passes the elfproef
EMAIL = "jan.jansen@example.nl"

SUITE = {
    "name": "inspecties",
    "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "kvk_pseudo"}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "uitkomst", "value_set": [0, 1]}},
        {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "kvk_pseudo", "regex": "^P[0-9]{3}$"}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "boete", "min_value": 0, "max_value": 10000}},
    ],
}
GOOD = "kvk_pseudo,uitkomst,boete\nP001,1,250\nP002,0,0\nP003,1,9000\n"
BAD = f"kvk_pseudo,uitkomst,boete\nP001,1,250\n{BSN},0,0\nP003,7,-5\n"


def make_case(build_tree, root, *, personal=True, data=GOOD, suite=SUITE):
    spec = {
        "id": "kwaliteit",
        "title": "Kwaliteit",
        "zaaknummer": "NVWA-2026-000123",
        "inspectorates": ["NVWA"],
        "datasets": [
            {"name": "inspecties", "path": "data/inspecties.csv", "personal_data": personal,
             "synthetic": not personal, "suite": "inspecties"},
        ],
    }  # fmt: skip
    build_tree(
        root,
        {
            "case.yaml": yaml.safe_dump(spec),
            "gx": {"inspecties.json": json.dumps(suite)},
            "data": {"inspecties.csv": data},
        },
    )
    from idsp.case import Case

    return Case.open(root)


def test_passing_suite_writes_evidence_with_its_sha256(tmp_path):
    case = make_case(build_tree, tmp_path / "case")
    result = case.validate("inspecties")
    assert result.success and result.passed == result.evaluated == 4
    assert result.dataset == "inspecties" and result.case_id == "kwaliteit"
    assert result.json_path.parent == case.root / "quality" / "inspecties"
    raw = result.json_path.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == result.sha256
    assert result.json_path.with_name(result.json_path.name + ".sha256").read_text().split()[0] == result.sha256
    body = json.loads(raw)
    assert body["data_fingerprint"] == quality.file_sha256(case.root / "data/inspecties.csv")
    assert body["gx_version"].startswith("1.")
    page = result.html_path.read_text()
    assert "<script" not in page and "http" not in page.replace('lang="en"', "")  # self-contained
    latest = quality.latest_result(case, "inspecties")
    assert latest["sha256"] == result.sha256 and latest["sha256_ok"]


def test_failing_suite_raises_and_masks_personal_examples(tmp_path):
    case = make_case(build_tree, tmp_path / "case", data=BAD)
    with pytest.raises(QualityError) as err:
        case.validate("inspecties")
    assert err.value.exit_code == 1
    result = err.value.result
    assert not result.success and result.passed == 1
    failed = {o.type: o for o in result.failed}
    regex = failed["expect_column_values_to_match_regex"]
    assert regex.unexpected_count == 1 and regex.examples_masked
    assert BSN not in json.dumps([o.examples for o in result.expectations], default=str)
    assert "regex" in err.value.message and "kvk_pseudo" in err.value.message
    # evidence is written for a failed suite too, and never holds the raw value
    for path in (result.json_path, result.html_path):
        assert BSN not in path.read_text()
    assert "FAILED" in result.html_path.read_text()


def test_identifier_values_are_masked_even_in_a_non_personal_dataset(tmp_path):
    data = f"kvk_pseudo,uitkomst,boete\nP001,1,250\n{EMAIL},0,0\nP003,1,1\n"
    case = make_case(build_tree, tmp_path / "case", personal=False, data=data)
    result = case.validate("inspecties", fail_fast=False)
    assert not result.success and not result.personal_data
    regex = next(o for o in result.failed if o.type == "expect_column_values_to_match_regex")
    assert regex.examples_masked and EMAIL not in str(regex.examples)
    assert EMAIL not in result.json_path.read_text()


def test_a_dataframe_with_a_personal_column_declared(tmp_path):
    import pandas as pd

    gx_dir = tmp_path / "gx"
    quality.save_suite(SUITE, gx_dir=gx_dir)
    df = pd.DataFrame({"kvk_pseudo": ["P001", "X9"], "uitkomst": [1, 0], "boete": [1, 2]})
    result = quality.validate(df, "inspecties", gx_dir=gx_dir, fail_fast=False, personal_columns=["kvk_pseudo"])
    regex = next(o for o in result.failed if o.type == "expect_column_values_to_match_regex")
    assert regex.examples == ("**",) and regex.examples_masked
    assert result.json_path is None  # no case, no output folder: nothing written
    assert result.data_fingerprint.startswith("pandas-gx-md5:")


def test_suite_errors_name_the_file_and_the_fix(tmp_path):
    gx_dir = tmp_path / "gx"
    gx_dir.mkdir()
    (gx_dir / "kapot.json").write_text('{"name": "kapot", "expectations": [\n  {"type": }]}')
    with pytest.raises(UserError, match=r"kapot.json, line 2"):
        quality.load_suite("kapot", gx_dir=gx_dir)
    with pytest.raises(UserError, match="known suites: kapot"):
        quality.load_suite("bestaatniet", gx_dir=gx_dir)
    (gx_dir / "raar.json").write_text(json.dumps({"name": "raar", "expectations": [{"type": "expect_pigs_to_fly", "kwargs": {}}]}))
    import pandas as pd

    with pytest.raises(UserError, match=r"raar.json, expectations\[0\]"):
        quality.validate(pd.DataFrame({"a": [1]}), "raar", gx_dir=gx_dir)


def test_cli_exit_codes_and_json(tmp_path, cli, monkeypatch):
    case = make_case(build_tree, tmp_path / "case")
    monkeypatch.chdir(case.root)
    code, out, err = cli("quality", "validate", "inspecties", "--json")
    assert code == 0, err
    body = json.loads(out)
    assert body["success"] and body["sha256"]
    (case.root / "data" / "slecht.csv").write_text(BAD)
    code, out, err = cli("quality", "validate", "data/slecht.csv", "--suite", "inspecties")
    assert code == 1
    assert "FAILED" in out and BSN not in out
    code, out, err = cli("quality", "validate", "data/bestaat-niet.csv", "--suite", "inspecties")
    assert code == 2 and "bestaat-niet.csv" in err


def test_help_and_import_stay_light():
    code = (
        "import sys\n"
        "from idsp.cli import run\n"
        "for group in ('quality', 'tracking'):\n"
        "    run([group, '--help'])\n"
        "import idsp.quality, idsp.tracking, idsp.tracking.model_card, idsp.tracking.fairness, idsp.tracking.server\n"
        "import idsp.case\n"
        "heavy = [m for m in ('pandas', 'great_expectations', 'mlflow', 'dvc', 'sklearn') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
def test_spark_engine_on_a_parquet_file_and_a_spark_frame(tmp_path):
    import pandas as pd

    gx_dir = tmp_path / "gx"
    quality.save_suite(SUITE, gx_dir=gx_dir)
    frame = pd.DataFrame({"kvk_pseudo": ["P001", BSN, None], "uitkomst": [1, 0, 1], "boete": [1.0, 2.0, 3.0]})
    path = tmp_path / "inspecties.parquet"
    frame.to_parquet(path)
    result = quality.validate(path, "inspecties", gx_dir=gx_dir, engine="spark", fail_fast=False, output_dir=tmp_path / "out")
    assert result.engine == "spark" and result.rows == 3
    by_type = {o.type: o for o in result.expectations}
    assert by_type["expect_column_values_to_not_be_null"].unexpected_count == 1
    regex = by_type["expect_column_values_to_match_regex"]
    assert regex.unexpected_count == 1 and regex.examples_masked and BSN not in str(regex.examples)
    assert result.data_fingerprint == quality.file_sha256(path)
    # a Spark DataFrame picks the spark engine by itself (validating it again would only
    # repeat the Spark jobs above, ~1 min on a busy 2-core machine)
    assert quality._is_spark_frame(quality._spark().read.parquet(str(path)))
    assert not quality._is_spark_frame(frame)
