"""One identifier check: the privacy scan, the pre-commit hook and the MLflow guard give one verdict.

Each text goes to all three entry points: a free-text cell for ``idsp.privacy.scan``, a
line of a committed file for ``idsp data scan --fail-on-pii`` (what the case's pre-commit
hook runs), and a parameter text and a logged file for the MLflow guard. Generated numbers
only: 111222333 and 123456782 pass the elfproef and belong to nobody.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from idsp import privacy
from idsp.errors import PIIFound
from idsp.privacy.check import MAX_TEXT_BYTES, TooLargeToCheck
from idsp.scanning import scan_path
from idsp.tracking import guard

CASES = [
    ("de burger met BSN 111222333 belde", {"bsn"}),
    ("BSN geschreven als 1234.56.782 in de brief", {"bsn"}),
    ("kolom feature_111222333_flag", {"bsn"}),
    ("rekening NL91 ABNA 0417 1643 00 betaald", {"iban"}),
    ("rekening NL91ABNA0417164300 betaald", {"iban"}),
    ("mail jan.jansen@voorbeeld.nl graag", {"email"}),
    ("bel 06-12345678 terug", {"phone"}),
    ("tel=+31612345678", {"phone"}),
    ("loss 0.123456789 en auc 0.8123456", set()),
    ("learning_rate 1e-05 versie 3.17.2 run 2026-11-28T12:00:00", set()),
    ("zending 12345678 verstuurd op 20261128", set()),  # 8 digits without KvK context
    ("bedrijf met KvK-nummer 12345678 bezocht", {"kvk"}),
    ("handelsregister: 1234 5678", {"kvk"}),
    ("run id 3f9a1c0e5b7d4e2f8a6c1b0d9e8f7a6b", set()),
]


def _scan_cell(text: str) -> set[str]:
    return {f.kind for f in privacy.scan(pd.DataFrame({"notitie": [text, "geen bijzonderheden"]}))}


def _hook(cli, path) -> tuple[int, set[str]]:
    code, out, _ = cli("data", "scan", str(path), "--json", "--fail-on-pii")
    return code, {f["kind"] for f in json.loads(out)[0]["findings"]}


def _guard_text(text: str) -> set[str]:
    kinds = {k for k, _ in guard.find_identifiers(text)}
    if kinds:
        with pytest.raises(PIIFound):
            guard.check_text(text, "parameter 'x'")
    else:
        guard.check_text(text, "parameter 'x'")
    return kinds


def _guard_file(path) -> bool:
    try:
        guard.check_file(path)
    except PIIFound:
        return False
    return True


@pytest.mark.parametrize("text,kinds", CASES)
def test_scan_hook_and_guard_agree_on_a_text(cli, tmp_path, text, kinds):
    path = tmp_path / "notes.md"
    path.write_text(f"# Aantekeningen\n\n{text}\n", encoding="utf-8")
    code, hook_kinds = _hook(cli, path)
    assert _scan_cell(text) == kinds
    assert hook_kinds == kinds and code == (1 if kinds else 0)
    assert _guard_text(text) == kinds
    assert _guard_file(path) == (not kinds)


def test_the_allow_mark_is_honoured_by_hook_and_guard_alike(cli, tmp_path):
    path = tmp_path / "fixtures.py"
    path.write_text('BSN = "111222333"  # idsp: allow-pii\n', encoding="utf-8")
    assert _hook(cli, path) == (0, set())
    assert _guard_file(path)


def test_a_table_gets_one_verdict_from_hook_and_guard(cli, tmp_path):
    frame = pd.DataFrame({"kvk_nummer": ["12345678", "87654321"], "omzet": ["10", "20"]})
    for name in ("bedrijven.parquet", "bedrijven.csv"):
        path = tmp_path / name
        frame.to_parquet(path) if name.endswith(".parquet") else frame.to_csv(path, index=False)
        assert _hook(cli, path) == (1, {"kvk"})
        assert not _guard_file(path)
        clean = tmp_path / f"schoon{path.suffix}"
        frame[["omzet"]].to_parquet(clean) if name.endswith(".parquet") else frame[["omzet"]].to_csv(clean)
        assert _hook(cli, clean) == (0, set())
        assert _guard_file(clean)


def test_an_oversize_text_file_is_refused_by_hook_and_guard_naming_it(cli, tmp_path):
    path = tmp_path / "export.jsonl"
    path.write_bytes(b'{"n": 1}\n' * (MAX_TEXT_BYTES // 9 + 1))
    assert path.stat().st_size > MAX_TEXT_BYTES
    with pytest.raises(TooLargeToCheck) as err:
        scan_path(path)
    assert "export.jsonl" in err.value.message and "20 MiB" in err.value.message
    code, out, err_text = cli("data", "scan", str(path))  # refused even without --fail-on-pii
    assert code == 1 and "export.jsonl" in err_text and "dvc add" in err_text and "Traceback" not in err_text
    with pytest.raises(PIIFound, match="export.jsonl"):
        guard.check_file(path)


def test_a_binary_file_is_skipped_by_both_and_says_so(cli, tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"\0\x01" * 100 + b"111222333")
    code, out, _ = cli("data", "scan", str(path), "--json", "--fail-on-pii")
    assert code == 0 and json.loads(out)[0]["skipped"] == "binary"
    assert _guard_file(path)


def test_scrub_masks_what_the_check_finds():
    message = "training failed for feature_111222333_flag and NL91 ABNA 0417 1643 00, mail jan@voorbeeld.nl"
    scrubbed = privacy.scrub(message)
    assert privacy.find_identifiers(scrubbed) == []
    assert "111222333" not in scrubbed and "0417" not in scrubbed and "jan@" not in scrubbed
    assert scrubbed.startswith("training failed for feature_")
