"""Reading and writing tables the way Dutch government files come.

Rule: a file is read faithfully or not at all. Delimiter, encoding, decimal comma and
``dd-mm-jjjj`` dates are recognised, never guessed silently wrong: when a value does not
fit, the error names the file, the line and the column. A caller that must know what was
read (``idsp.Case.load``) passes ``verify``: it sees the md5 of the bytes that are parsed. Identifier-like columns (leading
zeros, BSN, postcodes) stay text. Writes are atomic: a temp file, then a rename.
"""

from __future__ import annotations

import csv
import io
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from idsp.errors import DataError, UserError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

CSV_SUFFIXES = {".csv", ".txt", ".tsv"}
EXCEL_SUFFIXES = {".xlsx", ".xlsm"}
PARQUET_SUFFIXES = {".parquet", ".pq"}
DELIMITERS = (";", ",", "\t", "|")
TYPES = ("str", "int", "float", "bool", "date", "datetime", "category")

_INT = re.compile(r"^[+-]?\d+$")
_DATE_NL = re.compile(r"^\d{1,2}-\d{1,2}-\d{4}$")
_DATE_SLASH = re.compile(r"^\d{1,2}/\d{1,2}/\d{4}$")
_DATE_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?$")
_TRUE = {"ja", "j", "true", "waar", "yes", "y", "1"}
_FALSE = {"nee", "n", "false", "onwaar", "no", "0"}


@dataclass(frozen=True)
class CsvDialect:
    encoding: str
    delimiter: str
    decimal: str
    thousands: str | None


def _number_pattern(decimal: str, thousands: str | None) -> re.Pattern:
    d = re.escape(decimal)
    if thousands:
        t = re.escape(thousands)
        return re.compile(rf"^[+-]?(\d{{1,3}}({t}\d{{3}})+|\d+)({d}\d+)?$")
    return re.compile(rf"^[+-]?\d+({d}\d+)?$")


def detect_encoding(raw: bytes, path: Path) -> str:
    if raw.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        raw.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        raw.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            f"the file is neither UTF-8 nor Windows-1252 (byte 0x{raw[exc.start]:02x})",
            where=f"{path}, line {line}",
            fix="Save it as UTF-8, or pass encoding='...' to read_table",
        ) from None


def sniff_delimiter(text: str, path: Path) -> str:
    """The delimiter that splits the first lines into the same, largest number of fields."""
    sample = text[:65536]
    lines = sample.splitlines()[:50]
    if len(lines) > 1 and not sample.endswith(("\n", "\r")) and len(sample) == 65536:
        lines = lines[:-1]  # the last line may be cut off
    best, best_score = None, (0, 0)
    for delim in DELIMITERS:
        widths = [len(row) for row in csv.reader(lines, delimiter=delim) if row]
        if not widths or widths[0] < 2:
            continue
        consistent = sum(1 for w in widths if w == widths[0])
        score = (consistent, widths[0])
        if score > best_score:
            best, best_score = delim, score
    if best is None:
        if len(lines) <= 1 or all(len(line.strip()) > 0 for line in lines):
            return ","  # one column: any delimiter reads it the same
        raise DataError("cannot tell the delimiter", where=str(path), fix="pass delimiter=';'")
    return best


def read_table(
    path: str | os.PathLike,
    schema: Mapping[str, str] | None = None,
    **overrides: Any,
) -> pd.DataFrame:
    """Read CSV (any of ; , tab |), Excel (.xlsx) or Parquet into a DataFrame.

    ``schema`` maps column -> one of str, int, float, bool, date, datetime, category and
    coerces those columns (an unconvertible value is an error with its line). Without a
    schema, columns whose every value is a whole number (without leading zeros), a
    number in the file's convention, a date (dd-mm-jjjj or ISO) or ja/nee are converted;
    the rest stays text. ``overrides``: encoding, delimiter, decimal, thousands,
    date_format, sheet (Excel), infer (False keeps all text).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", where=str(path), fix="Check the path (relative to the current folder)")
    suffix = path.suffix.lower()
    infer = overrides.pop("infer", True)
    verify = overrides.pop("verify", None)  # called with the md5 of the bytes read (``idsp.Case.load``)
    if verify is not None and suffix not in CSV_SUFFIXES:
        verify(_md5(path.read_bytes()))  # Excel and Parquet are read by their libraries, from the path
    if suffix in CSV_SUFFIXES:
        frame, lines, dialect = _read_csv(path, verify=verify, **overrides)
    elif suffix in EXCEL_SUFFIXES:
        frame, lines = _read_excel(path, sheet=overrides.pop("sheet", 0))
        dialect = CsvDialect("xlsx", "", ",", ".")  # numbers stored as Dutch text
        _no_more(overrides, path)
    elif suffix in PARQUET_SUFFIXES:
        import pandas as pd

        _no_more(overrides, path)
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises many types for damaged files
            raise DataError(f"not a readable Parquet file ({exc})", where=str(path)) from None
        return _apply_schema(frame, schema or {}, path, None, None) if schema else frame
    else:
        raise DataError(
            f"unknown file type {suffix or '(none)'}",
            where=str(path),
            fix="Use .csv, .tsv, .txt, .xlsx or .parquet",
        )
    converters = _Converters(dialect.decimal, dialect.thousands, overrides.get("date_format"))
    if schema:
        frame = _apply_schema(frame, schema, path, lines, converters)
    if infer:
        for column in frame.columns:
            if schema and column in schema:
                continue
            frame[column] = converters.infer(frame[column])
    frame.attrs["idsp.source"] = {
        "path": str(path),
        "encoding": dialect.encoding,
        "delimiter": dialect.delimiter,
        "decimal": dialect.decimal,
    }
    return frame


def _no_more(overrides: dict, path: Path) -> None:
    if overrides:
        raise UserError(
            f"option(s) {', '.join(overrides)} do not apply to {path.suffix} files",
            where=str(path),
        )


def _md5(raw: bytes) -> str:
    import hashlib

    return hashlib.md5(raw, usedforsecurity=False).hexdigest()


def _read_csv(path: Path, verify=None, **overrides: Any):
    import pandas as pd

    allowed = {"encoding", "delimiter", "decimal", "thousands", "date_format"}
    unknown = set(overrides) - allowed
    if unknown:
        raise UserError(
            f"unknown option(s) {', '.join(sorted(unknown))} for read_table",
            fix=f"Use: {', '.join(sorted(allowed))}, schema, infer",
        )
    raw = path.read_bytes()
    if verify is not None:
        verify(_md5(raw))  # the very bytes parsed below: no window to swap the file
    encoding = overrides.get("encoding") or detect_encoding(raw, path)
    try:
        text = raw.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise DataError(f"cannot decode as {encoding} ({exc})", where=str(path)) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    delimiter = overrides.get("delimiter") or (
        "\t" if path.suffix.lower() == ".tsv" else sniff_delimiter(text, path)
    )
    decimal = overrides.get("decimal") or ("." if delimiter == "," else ",")
    thousands = overrides.get("thousands", "." if decimal == "," else None)
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            skipinitialspace=True,
            engine="c",
        )
    except pd.errors.ParserError as exc:
        match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if match:
            want, line, saw = match.groups()
            raise DataError(
                f"this line has {saw} fields where the header has {want}",
                where=f"{path}, line {line}",
                fix=f"Quote values that contain {delimiter!r}, or pass delimiter= if it was guessed wrong",
            ) from None
        raise DataError(f"not a readable CSV file ({exc})", where=str(path)) from None
    except pd.errors.EmptyDataError:
        raise DataError("the file is empty", where=str(path)) from None
    header = next(csv.reader([text.splitlines()[0]], delimiter=delimiter))
    if len(set(header)) != len(header):
        seen = sorted({h for h in header if header.count(h) > 1})
        raise DataError(
            f"duplicate column name(s) {', '.join(map(repr, seen))}",
            where=f"{path}, line 1",
            fix="Give every column a unique name",
        )
    lines = _record_lines(text, delimiter, len(frame))
    return frame, lines, CsvDialect(encoding, delimiter, decimal, thousands)


def _record_lines(text: str, delimiter: str, n: int):
    """File line number of each data record (quoted fields may span lines)."""
    import numpy as np

    if text.count("\n") - (0 if text.endswith("\n") else -1) == n + 1 and '"' not in text:
        return np.arange(2, n + 2)
    starts = []
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    previous = 0
    for _row in reader:
        starts.append(previous + 1)
        previous = reader.line_num
    body = starts[1 : n + 1]
    return np.array(body if len(body) == n else list(range(2, n + 2)))


def excel_sheets(path: str | os.PathLike) -> list[str]:
    """The names of every sheet in an Excel workbook, in workbook order."""
    import pandas as pd

    try:
        with pd.ExcelFile(path, engine="openpyxl") as book:
            return [str(name) for name in book.sheet_names]
    except Exception as exc:  # openpyxl/zipfile errors for damaged files
        raise DataError(f"not a readable .xlsx file ({exc.__class__.__name__}: {exc})", where=str(path)) from None


def _read_excel(path: Path, sheet: int | str):
    import numpy as np
    import pandas as pd

    try:
        frame = pd.read_excel(path, sheet_name=sheet, dtype=object, engine="openpyxl")
    except ValueError as exc:
        raise DataError(f"cannot read sheet {sheet!r} ({exc})", where=str(path)) from None
    except Exception as exc:  # openpyxl/zipfile errors for damaged files
        raise DataError(f"not a readable .xlsx file ({exc.__class__.__name__}: {exc})", where=str(path)) from None
    for column in frame.columns:
        if frame[column].map(lambda v: isinstance(v, str)).any():
            frame[column] = frame[column].map(lambda v: v if v is None or isinstance(v, str) or v != v else str(v))
    return frame, np.arange(2, len(frame) + 2)


class _Converters:
    def __init__(self, decimal: str, thousands: str | None, date_format: str | None):
        self.decimal = decimal
        self.thousands = thousands
        self.number = _number_pattern(decimal, thousands)
        self.date_format = date_format

    def _texts(self, series: pd.Series) -> pd.Series:
        return series.dropna().astype(str).str.strip()

    def infer(self, series: pd.Series) -> pd.Series:
        import pandas as pd

        if not (pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)):
            return series
        if pd.api.types.is_object_dtype(series) and not series.map(lambda v: isinstance(v, str)).any():
            typed = series.infer_objects()  # Excel cells that are already numbers or dates
            return typed.astype("Int64") if pd.api.types.is_integer_dtype(typed) else typed
        series = series.astype("string")
        values = self._texts(series)
        if values.empty:
            return series
        unique = pd.Series(values.unique())
        if unique.str.match(_INT).all():
            leading_zero = unique.str.lstrip("+-").str.match(r"^0\d")
            if not leading_zero.any() and unique.str.len().max() < 16:
                return pd.to_numeric(series.str.strip(), errors="raise").astype("Int64")
            return series
        if self.date_format is None and unique.str.match(_DATE_NL).all():
            out = pd.to_datetime(series.str.strip(), format="%d-%m-%Y", errors="coerce")
            return out if out.notna().sum() == len(values) else series
        if self.date_format is None and unique.str.match(_DATE_ISO).all():
            out = pd.to_datetime(series.str.strip(), format="%Y-%m-%d", errors="coerce")
            return out if out.notna().sum() == len(values) else series
        if self.date_format and unique.map(lambda v: _fits(v, self.date_format)).all():
            return pd.to_datetime(series.str.strip(), format=self.date_format)
        if unique.str.match(self.number).all():
            return self.to_float(series)
        lowered = set(unique.str.lower())
        if lowered <= (_TRUE | _FALSE) and lowered & _TRUE and lowered & _FALSE and not lowered <= {"0", "1"}:
            return series.str.strip().str.lower().map(lambda v: None if v is None or v != v else v in _TRUE).astype("boolean")
        return series

    def to_float(self, series: pd.Series) -> pd.Series:
        import pandas as pd

        text = series.astype("string").str.strip()
        if self.thousands:
            text = text.str.replace(self.thousands, "", regex=False)
        if self.decimal != ".":
            text = text.str.replace(self.decimal, ".", regex=False)
        return pd.to_numeric(text, errors="coerce").astype("Float64")


def _fits(value: str, fmt: str) -> bool:
    from datetime import datetime

    try:
        datetime.strptime(value, fmt)
        return True
    except ValueError:
        return False


def _apply_schema(frame, schema: Mapping[str, str], path: Path, lines, conv: _Converters | None):
    import pandas as pd

    conv = conv or _Converters(",", ".", None)
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        raise DataError(
            f"column(s) {', '.join(map(repr, missing))} named in the schema are not in the file",
            where=f"{path}, line 1",
            fix=f"The file has: {', '.join(map(str, frame.columns))}",
        )
    for column, kind in schema.items():
        if kind not in TYPES:
            raise UserError(
                f"schema type {kind!r} for column {column!r} is not known",
                fix=f"Use one of: {', '.join(TYPES)}",
            )
        series = frame[column]
        if kind == "str":
            frame[column] = series.astype("string")
            continue
        if kind == "category":
            frame[column] = series.astype("category")
            continue
        if not (pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)):
            converted = _convert_typed(series, kind)
        else:
            converted = _convert_text(series, kind, conv)
        bad = series.notna() & converted.isna()
        if bad.any():
            position = int(bad.to_numpy().nonzero()[0][0])
            line = int(lines[position]) if lines is not None else position + 2
            where = f"{path}, line {line}, column {column!r}" if lines is not None else f"{path}, row {position + 1}, column {column!r}"
            raise DataError(
                f"value {str(series.iloc[position])!r} is not a {kind}"
                + (f" ({int(bad.sum())} such values in this column)" if bad.sum() > 1 else ""),
                where=where,
                fix=f"Correct the value, or declare {column!r} as another type in the schema",
            )
        frame[column] = converted
    return frame


def _convert_text(series, kind: str, conv: _Converters):
    import pandas as pd

    text = series.astype("string").str.strip()
    if kind == "int":
        ok = text.str.match(_INT).fillna(False)
        return pd.to_numeric(text.where(ok), errors="coerce").astype("Int64")
    if kind == "float":
        ok = text.str.match(conv.number).fillna(False)
        return conv.to_float(text.where(ok))
    if kind == "bool":
        low = text.str.lower()
        return low.map(lambda v: True if v in _TRUE else False if v in _FALSE else None).astype("boolean")
    if kind in ("date", "datetime"):
        if conv.date_format:
            return pd.to_datetime(text, format=conv.date_format, errors="coerce")
        out = pd.to_datetime(text.where(text.str.match(_DATE_NL).fillna(False)), format="%d-%m-%Y", errors="coerce")
        for pattern, fmt in ((_DATE_SLASH, "%d/%m/%Y"), (_DATE_ISO, "%Y-%m-%d")):
            fill = pd.to_datetime(text.where(text.str.match(pattern).fillna(False)), format=fmt, errors="coerce")
            out = out.fillna(fill)
        if kind == "datetime":
            fill = pd.to_datetime(text.where(text.str.match(_DATETIME_ISO).fillna(False)), errors="coerce")
            out = out.fillna(fill)
        return out
    raise AssertionError(kind)


def _convert_typed(series, kind: str):
    import pandas as pd

    if kind == "int":
        return pd.to_numeric(series, errors="coerce").astype("Int64")
    if kind == "float":
        return pd.to_numeric(series, errors="coerce").astype("Float64")
    if kind == "bool":
        return series.astype("boolean")
    return pd.to_datetime(series, errors="coerce")


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write Parquet atomically: a temp file beside the target, fsync, then rename."""
    path = Path(path)
    if path.suffix.lower() not in PARQUET_SUFFIXES:
        raise UserError(
            f"write_table writes Parquet, not {path.suffix or 'a file without suffix'}",
            where=str(path),
            fix="Give the output a .parquet suffix",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        df.to_parquet(tmp, index=False)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
