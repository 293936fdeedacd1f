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
    # quotes, % and + around a BSN are not part of it (the old guard found all of these)
    ("{'bsn': '123456782'}", {"bsn"}),
    ("bsn='123456782'", {"bsn"}),
    ("['123456782', '111222333']", {"bsn"}),
    ("123456782'", {"bsn"}),
    ("%123456782", {"bsn"}),
    ("+123456782", {"bsn"}),
    ("bsn '123456782' gevonden", {"bsn"}),
    ("BSN = '123456782'", {"bsn"}),
    ("df.bsn == '111222333'", {"bsn"}),
    ("tel='+31612345678'", {"phone"}),
    # a BSN at the end of a sentence is no decimal; 1.5E+10 and 0.123456789 are
    ("de BSN 111222333.", {"bsn"}),
    ("waarden 1.5E+10 en 0.123456789.", set()),
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


def test_the_allow_mark_is_honoured_by_the_hook_but_not_by_the_guard(cli, tmp_path):
    """The mark is for generated fixtures in git; nothing marked reaches MLflow unchecked."""
    path = tmp_path / "fixtures.py"
    path.write_text('BSN = "111222333"  # idsp: allow-pii\n', encoding="utf-8")
    assert _hook(cli, path) == (0, set())
    assert not _guard_file(path)
    assert scan_path(path, honour_allow_mark=False).findings[0].kind == "bsn"


def test_a_quoted_bsn_in_code_is_found_by_hook_and_guard(cli, tmp_path):
    leak = tmp_path / "leak.py"
    leak.write_text("BSN = '123456782'\nrow = {'bsn': '111222333'}\nids = ['123456782', '111222333']\n",
                    encoding="utf-8")
    assert _hook(cli, leak) == (1, {"bsn"})
    assert scan_path(leak).findings[0].count == 4  # one per line and BSN
    assert not _guard_file(leak)
    notebook = tmp_path / "analyse.ipynb"
    cell = {"cell_type": "code", "metadata": {}, "source": ["df[df.bsn == '111222333']\n"], "outputs": []}
    notebook.write_text(json.dumps({"cells": [cell], "nbformat": 4, "nbformat_minor": 5, "metadata": {}}))
    assert _hook(cli, notebook) == (1, {"bsn"})
    assert not _guard_file(notebook)


def test_identifiers_as_column_names_are_found_by_scan_hook_and_guard(cli, tmp_path):
    """A pivoted table has BSNs for column names; findings show them masked."""
    pivot = tmp_path / "pivot.csv"
    pivot.write_text("maand,123456782,111222333\njan,1,2\nfeb,3,4\n", encoding="utf-8")
    code, out, _ = cli("data", "scan", str(pivot), "--json", "--fail-on-pii")
    assert code == 1 and {f["kind"] for f in json.loads(out)[0]["findings"]} == {"bsn"}
    assert "123456782" not in out and "111222333" not in out
    assert not _guard_file(pivot)
    frame = pd.DataFrame({"maand": ["jan"], "123456782": [1.0], "kvk_12345678": [2.0], "omzet": [3.0]})
    found = {(f.column, f.kind) for f in privacy.scan(frame)}
    assert found == {("*******82", "bsn"), ("kvk_******78", "kvk")}
    frame.to_parquet(tmp_path / "pivot.parquet")
    assert _hook(cli, tmp_path / "pivot.parquet") == (1, {"bsn", "kvk"})
    assert not _guard_file(tmp_path / "pivot.parquet")


def test_every_sheet_of_a_workbook_is_checked(cli, tmp_path):
    path = tmp_path / "map.xlsx"
    with pd.ExcelWriter(path, engine="openpyxl") as book:
        pd.DataFrame({"omzet": ["10", "20"]}).to_excel(book, sheet_name="Overzicht", index=False)
        pd.DataFrame({"burger": ["111222333", "123456782"]}).to_excel(book, sheet_name="Bijlage", index=False)
    result = scan_path(path)
    assert [(f.column, f.kind) for f in result.findings] == [("Bijlage!burger", "bsn")] and result.rows == 4
    assert _hook(cli, path) == (1, {"bsn"})
    assert not _guard_file(path)


def test_an_oversize_table_is_refused_by_hook_and_guard_naming_it(cli, tmp_path, monkeypatch):
    from idsp import scanning

    path = tmp_path / "export.csv"
    path.write_text("omzet\n" + "10\n" * 600, encoding="utf-8")
    monkeypatch.setattr(scanning, "MAX_TABLE_BYTES", 1024)
    with pytest.raises(TooLargeToCheck) as err:
        scan_path(path)
    assert "export.csv" in err.value.message and "dvc add" in (err.value.fix or "")
    code, _, err_text = cli("data", "scan", str(path))
    assert code == 1 and "export.csv" in err_text and "dvc add" in err_text and "Traceback" not in err_text
    with pytest.raises(PIIFound, match="export.csv"):
        guard.check_file(path)
    assert scanning.MAX_TABLE_BYTES < 2**31 and scanning.MAX_TABLE_BYTES == 1024


def test_a_file_that_grows_while_read_is_refused(tmp_path, monkeypatch):
    """The size comes from what was read, not from a stat() taken before the read."""
    import os
    from pathlib import Path

    from idsp.privacy import check

    path = tmp_path / "log.txt"
    path.write_bytes(b"regel\n" * 100)  # 600 bytes: under the limit when stat() is taken
    small = os.stat(path)
    monkeypatch.setattr(check, "MAX_TEXT_BYTES", 1000)
    real_stat = Path.stat
    monkeypatch.setattr(Path, "stat", lambda self, **kw: small if self == path else real_stat(self, **kw))
    path.write_bytes(b"regel\n" * 3000)  # grew after the stat the reader sees
    with pytest.raises(TooLargeToCheck):
        check.read_text(path)


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


def test_scrub_masks_quoted_identifiers():
    scrubbed = privacy.scrub("KeyError: '123456782' in {'bsn': '111222333'}, bel '+31612345678'")
    assert "123456782" not in scrubbed and "111222333" not in scrubbed and "31612345678" not in scrubbed
    assert scrubbed.startswith("KeyError: '") and privacy.find_identifiers(scrubbed) == []


def test_scrub_masks_what_the_check_finds():
    message = "training failed for feature_111222333_flag and NL91 ABNA 0417 1643 00, mail jan@voorbeeld.nl"
    scrubbed = privacy.scrub(message)
    assert privacy.find_identifiers(scrubbed) == []
    assert "111222333" not in scrubbed and "0417" not in scrubbed and "jan@" not in scrubbed
    assert scrubbed.startswith("training failed for feature_")


def test_the_bulk_filter_drops_no_cell_the_text_check_would_flag():
    """privacy.scan sends only some cells to the per-value text check; it must not lose a verdict."""
    import random

    import numpy as np
    from idsp.privacy import tables
    from idsp.privacy.validators import KINDS

    pieces = ["123456782", "111222333", "1234.56.782", "123 456 782", "123-456-782", "0612345678", "06-12345678",
              "+31612345678", "0031612345678", "0800-1234", "0900.1234567", "NL91ABNA0417164300",
              "NL91 ABNA 0417 1643 00", "jan@voorbeeld.nl", "kvk", "KvK-nummer", "coc", "12345678", "1234 5678",
              "ORD-2026-00012345", "ZK-2026-000123456", "2026-11-28", "0.123456789", "1e-05", "1.5E+10",
              "3f9a1c0e5b7d4e2f", "20261128", "0612345678.5", "1e+0612345678", "111222333.", "06.12.34.56.78",
              "(06)12345678", "x", "BSN", "x0612345678", "-0612345678", "00-31-612345678", "0031 6 1234 5678",
              "é", "regel\n"]
    seps = ["", " ", "_", "-", ".", "'", "=", "%", "+"]
    rng = random.Random(20261201)
    texts = sorted({"".join(rng.choice(pieces) + rng.choice(seps) for _ in range(rng.randint(1, 3))).strip()
                    for _ in range(4000)} | set(pieces))
    values = np.asarray(texts, dtype=object)
    whole = np.zeros(len(texts), dtype=bool)
    for kind in KINDS.values():
        whole |= kind.check.many(values)
    for context in (False, True):
        kept = set(tables._candidates(texts, np.flatnonzero(~whole), context).tolist())
        lost = [t for i, t in enumerate(texts)
                if not whole[i] and i not in kept and privacy.find_identifiers(t, kvk_context=context)]
        assert lost == [] and len(kept) < (~whole).sum()


def test_order_numbers_dates_and_decimals_skip_the_per_value_check(monkeypatch):
    """The bulk filter keeps the slow per-value check for the cells that could hold an identifier."""
    from idsp.privacy import tables

    calls = []
    real = tables.find_identifiers
    monkeypatch.setattr(tables, "find_identifiers", lambda text, **kw: calls.append(text) or real(text, **kw))
    n = 2000
    frame = pd.DataFrame({
        "order": [f"ORD-2026-{i:08d}" for i in range(n)],
        "datum": [f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T12:00:{i % 60:02d}" for i in range(n)],
        "bedrag": [f"{1000 + i / 7:.9f}" for i in range(n)],
        "hash": [f"{i:032x}" for i in range(n)],
        "notitie": [f"order ORD-2026-{i:08d} van 2026-11-28" for i in range(n)],
    })
    assert privacy.scan(frame) == [] and set(calls) == set(frame.columns)  # the names only
    frame["notitie"] = frame["notitie"] + " bsn 111222333."
    calls.clear()
    assert {(f.column, f.kind) for f in privacy.scan(frame)} == {("notitie", "bsn")} and len(calls) == n + 5
