"""read_table on a corpus of awkward Dutch government files; atomic write_table."""

from __future__ import annotations

import os
from datetime import datetime

import pandas as pd
import pytest
from idsp.data import read_table, write_table
from idsp.errors import DataError, UserError

HEADER = "zaak;bedrijf;bedrag;datum;postcode;aantal;gecontroleerd\n"
ROWS = (
    "Z-1;Bakkerij Één;1.234,56;01-02-2024;0123 AB;5;ja\n"
    '"Z-2";"Smit; Zonen";12,5;31-12-2023;1234 CD;-3;nee\n'
)


def write(path, text, encoding="utf-8", bom=False):
    data = text.encode(encoding)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


@pytest.mark.parametrize(
    ("encoding", "bom"), [("utf-8", False), ("utf-8", True), ("cp1252", False)], ids=["utf8", "bom", "cp1252"]
)
def test_semicolon_decimal_comma_dates_in_every_encoding(tmp_path, encoding, bom):
    df = read_table(write(tmp_path / "z.csv", HEADER + ROWS, encoding, bom))
    assert list(df.columns) == ["zaak", "bedrijf", "bedrag", "datum", "postcode", "aantal", "gecontroleerd"]
    assert df["bedrijf"].tolist() == ["Bakkerij Één", "Smit; Zonen"]
    assert df["bedrag"].tolist() == [1234.56, 12.5]
    assert df["datum"].tolist() == [datetime(2024, 2, 1), datetime(2023, 12, 31)]
    assert df["aantal"].tolist() == [5, -3]
    assert df["gecontroleerd"].tolist() == [True, False]
    assert df.attrs["idsp.source"]["delimiter"] == ";"


def test_comma_and_tab_files(tmp_path):
    df = read_table(write(tmp_path / "c.csv", "a,b,c\n1,2.5,x\n3,4.0,y\n"))
    assert df["b"].tolist() == [2.5, 4.0] and df["a"].dtype == "Int64"
    df = read_table(write(tmp_path / "t.txt", "a\tb\n1\t2,5\n"))
    assert df["b"].tolist() == [2.5]


def test_identifiers_with_leading_zeros_stay_text(tmp_path):
    df = read_table(write(tmp_path / "z.csv", "kvk;bsn\n01234567;012345678\n12345678;123456789\n"))
    assert df["kvk"].tolist() == ["01234567", "12345678"]
    assert df["bsn"].tolist() == ["012345678", "123456789"]


def test_quoted_newline_keeps_line_numbers_right(tmp_path):
    text = 'id;opmerking;bedrag\n1;"twee\nregels";3,5\n2;gewoon;veel\n'
    with pytest.raises(DataError) as exc:
        read_table(write(tmp_path / "q.csv", text), schema={"bedrag": "float"})
    msg = exc.value.message
    assert "q.csv, line 4, column 'bedrag'" in msg and "'veel'" in msg


def test_ragged_line_names_file_and_line(tmp_path):
    with pytest.raises(DataError) as exc:
        read_table(write(tmp_path / "r.csv", "a;b\n1;2\n3;4;5\n"))
    assert "r.csv, line 3" in exc.value.message and "3 fields" in exc.value.message


def test_impossible_date_is_an_error_with_line(tmp_path):
    with pytest.raises(DataError) as exc:
        read_table(write(tmp_path / "d.csv", "id;datum\n1;01-02-2024\n2;31-02-2024\n"), schema={"datum": "date"})
    assert "line 3, column 'datum'" in exc.value.message
    # without a schema the column stays text rather than silently losing a value
    assert read_table(tmp_path / "d.csv")["datum"].tolist() == ["01-02-2024", "31-02-2024"]


def test_schema_coerces_and_checks(tmp_path):
    path = write(tmp_path / "s.csv", "code;n;ok;cat\n007;1.000;ja;A\n008;2,5;nee;B\n")
    df = read_table(path, schema={"code": "str", "n": "float", "ok": "bool", "cat": "category"})
    assert df["code"].tolist() == ["007", "008"] and df["n"].tolist() == [1000.0, 2.5]
    assert df["ok"].tolist() == [True, False] and str(df["cat"].dtype) == "category"
    with pytest.raises(DataError, match="'missing'"):
        read_table(path, schema={"missing": "int"})
    with pytest.raises(UserError, match="one of: str, int"):
        read_table(path, schema={"n": "decimal"})


def test_not_decodable_names_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"a;b\n1;2\n3;\x81\x8d\x90\n")
    with pytest.raises(DataError) as exc:
        read_table(path)
    assert "bad.csv, line 3" in exc.value.message


def test_duplicate_header_and_unknown_type(tmp_path):
    with pytest.raises(DataError, match="duplicate column"):
        read_table(write(tmp_path / "dup.csv", "a;a\n1;2\n"))
    with pytest.raises(DataError, match="unknown file type"):
        read_table(write(tmp_path / "x.json", "{}"))
    with pytest.raises(DataError, match="file not found"):
        read_table(tmp_path / "none.csv")


def test_excel_and_parquet(tmp_path):
    frame = pd.DataFrame({"bsn": ["012345678"], "bedrag": ["1.234,50"], "n": [3]})
    xlsx = tmp_path / "x.xlsx"
    frame.to_excel(xlsx, index=False)
    df = read_table(xlsx)
    assert df["bsn"].tolist() == ["012345678"] and df["bedrag"].tolist() == [1234.5]
    with pytest.raises(DataError) as exc:
        read_table(xlsx, schema={"bsn": "str", "bedrag": "float", "n": "date"})
    assert "x.xlsx" in exc.value.message and "'n'" in exc.value.message
    out = write_table(df, tmp_path / "out" / "x.parquet")
    assert read_table(out)["bedrag"].tolist() == [1234.5]


class FailingFrame(pd.DataFrame):
    """A frame whose Parquet writer dies halfway, like a full disk."""

    def to_parquet(self, path, **kw):
        with open(path, "wb") as fh:
            fh.write(b"PAR1 half")
        raise OSError("No space left on device")


def test_write_table_is_atomic(tmp_path):
    target = tmp_path / "t.parquet"
    write_table(pd.DataFrame({"a": [1, 2]}), target)
    with pytest.raises(OSError, match="No space"):
        write_table(FailingFrame({"a": [9]}), target)
    assert read_table(target)["a"].tolist() == [1, 2]  # the old file is intact
    assert os.listdir(tmp_path) == ["t.parquet"]  # no temp file left
    with pytest.raises(UserError, match="parquet"):
        write_table(pd.DataFrame(), tmp_path / "t.csv")
