"""Data quality: a case's Great Expectations suites as a gate and as evidence.

Rule: a suite is GX 1.x JSON in the case's ``gx/`` folder, and a validation is evidence —
its summary is written as JSON together with its sha256 and a self-contained HTML report,
and no example value from a personal-data column (or any value that looks like a BSN,
IBAN, e-mail address or phone number) is ever written unmasked. Great Expectations is
imported only when a validation runs; ``import idsp.quality`` stays cheap.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from idsp.errors import DataError, QualityError, UserError
from idsp.files import atomic_write, read_limited

if TYPE_CHECKING:  # pragma: no cover
    from idsp.case_file import CaseFile

SUITE_DIR = "gx"
RESULTS_DIR = "quality"
EXAMPLES = 5
ENGINES = ("pandas", "spark")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation of a suite, as a reviewer reads it."""

    type: str
    column: str | None
    kwargs: dict[str, Any]
    success: bool
    element_count: int | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    examples: tuple[Any, ...] = ()
    examples_masked: bool = False
    error: str | None = None


@dataclass(frozen=True)
class QualityResult:
    """The outcome of one suite on one batch of data; ``json_path`` + ``sha256`` are evidence."""

    suite: str
    success: bool
    evaluated: int
    passed: int
    engine: str
    data: str
    data_fingerprint: str
    rows: int | None
    personal_data: bool
    dataset: str | None
    case_id: str | None
    gx_version: str
    validated_at: str
    expectations: tuple[ExpectationOutcome, ...] = field(default_factory=tuple)
    json_path: Path | None = None
    html_path: Path | None = None
    sha256: str | None = None

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [e for e in self.expectations if not e.success]

    def summary(self) -> str:
        state = "passed" if self.success else "FAILED"
        return f"{self.suite}: {state} ({self.passed}/{self.evaluated} expectations)"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("json_path", "html_path"):
            data[key] = str(data[key]) if data[key] else None
        return data


# -- suites ----------------------------------------------------------------------------------


def suite_dir(case: CaseFile | None = None, gx_dir: str | os.PathLike | None = None) -> Path:
    if gx_dir is not None:
        return Path(gx_dir)
    if case is None:
        # The library never guesses the case from the current folder: that is the edge's job.
        raise UserError(
            "no case and no suite folder given, so there are no suites to read",
            fix="Pass case= (or use `idsp.Case.open().validate(...)`), or gx_dir= for suites outside a case",
        )
    return case.root / SUITE_DIR


def list_suites(case: CaseFile | None = None, gx_dir: str | os.PathLike | None = None) -> list[str]:
    folder = suite_dir(case, gx_dir)
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def load_suite(
    name: str, *, case: CaseFile | None = None, gx_dir: str | os.PathLike | None = None
) -> dict[str, Any]:
    """Read ``gx/<name>.json`` (GX 1.x suite JSON) and check its shape, naming file and field."""
    folder = suite_dir(case, gx_dir)
    if not _NAME_RE.match(name or ""):
        raise UserError(
            f"{name!r} is not a suite name",
            fix="Use the file name of a suite in gx/ without .json, e.g. `--suite inspections`",
        )
    path = folder / f"{name}.json"
    if not path.is_file():
        known = ", ".join(list_suites(case, gx_dir)) or "none"
        raise UserError(
            f"there is no suite {name!r} (known suites: {known})",
            where=str(path),
            fix="Create the suite as GX 1.x JSON in the case's gx/ folder, or pass an existing --suite",
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(
            f"not valid JSON ({exc.msg})",
            where=f"{path}, line {exc.lineno}, column {exc.colno}",
            fix="Fix the syntax of the suite file",
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("expectations"), list):
        raise UserError(
            "a suite is a JSON object with `name` and a list `expectations`",
            where=str(path),
            fix='Write it as {"name": "...", "expectations": [{"type": ..., "kwargs": {...}}]}',
        )
    if data.get("name", name) != name:
        raise UserError(
            f"the suite file says `name: {data.get('name')!r}` but is called {name}.json",
            where=f"{path}, field name",
            fix="Make the name and the file name the same",
        )
    for i, exp in enumerate(data["expectations"]):
        if not isinstance(exp, dict) or not isinstance(exp.get("type"), str):
            raise UserError(
                "every expectation needs a `type` such as expect_column_values_to_not_be_null",
                where=f"{path}, expectations[{i}]",
            )
        if not isinstance(exp.get("kwargs", {}), dict):
            raise UserError("`kwargs` must be an object", where=f"{path}, expectations[{i}].kwargs")
    data["name"] = name
    data["_path"] = str(path)
    return data


def save_suite(
    suite: dict[str, Any], *, case: CaseFile | None = None, gx_dir: str | os.PathLike | None = None
) -> Path:
    """Write a suite dict as ``gx/<name>.json`` (atomically)."""
    name = suite["name"]
    if not _NAME_RE.match(name or ""):
        raise UserError(f"{name!r} is not a suite name", fix="Use letters, digits, '.', '_' or '-'")
    folder = suite_dir(case, gx_dir)
    body = {k: v for k, v in suite.items() if not k.startswith("_")}
    path = folder / f"{name}.json"
    atomic_write(path, json.dumps(body, indent=2, ensure_ascii=False) + "\n")
    return path


# -- validation ------------------------------------------------------------------------------


def validate(
    data: Any,
    suite: str | None = None,
    *,
    case: CaseFile | None = None,
    engine: str | None = None,
    fail_fast: bool = True,
    personal_columns: Sequence[str] | None = None,
    output_dir: str | os.PathLike | None = None,
    gx_dir: str | os.PathLike | None = None,
    save: bool = True,
) -> QualityResult:
    """Validate a DataFrame (pandas or Spark), a dataset name or a file path against a suite.

    ``suite`` defaults to the dataset's ``suite`` in case.yaml, or the only suite in gx/.
    ``engine`` is ``pandas`` (default) or ``spark``; a Spark DataFrame implies spark.
    With ``fail_fast`` (the default) a failed suite raises ``QualityError`` after the
    evidence is written; the error carries the result as ``.result``.
    Examples of unexpected values are masked for every column of a personal-data dataset,
    for ``personal_columns`` and columns the suite marks ``meta.personal_data``, and for any
    value that is itself an identifier.
    """
    dataset = None
    if case is not None and isinstance(data, str) and _is_dataset(case, data):
        dataset = case.dataset(data)
    suite_name = suite or (dataset.suite if dataset else None) or _only_suite(case, gx_dir)
    spec = load_suite(suite_name, case=case, gx_dir=gx_dir)

    is_spark = _is_spark_frame(data)
    engine = engine or ("spark" if is_spark else "pandas")
    if engine not in ENGINES:
        raise UserError(f"unknown engine {engine!r}", fix=f"Use one of {', '.join(ENGINES)}")

    source, fingerprint = _describe(data, case, dataset)
    frame = _load(data, case, dataset, engine)
    personal = bool(dataset and dataset.personal_data)
    marked = set(personal_columns or ())
    marked |= {
        e.get("kwargs", {}).get("column")
        for e in spec["expectations"]
        if (e.get("meta") or {}).get("personal_data")
    }
    marked |= set((spec.get("meta") or {}).get("personal_columns", ()))
    raw, gx_version = _run_gx(frame, spec, engine)
    if fingerprint is None:
        fingerprint = _frame_fingerprint(frame, engine, raw)
    outcomes = tuple(_outcome(r, personal, marked) for r in raw["results"])
    passed = sum(1 for o in outcomes if o.success)
    result = QualityResult(
        suite=suite_name,
        success=bool(raw["success"]),
        evaluated=len(outcomes),
        passed=passed,
        engine=engine,
        data=source,
        data_fingerprint=fingerprint,
        rows=_row_count(frame, engine),
        personal_data=personal,
        dataset=dataset.name if dataset else None,
        case_id=case.id if case is not None else None,
        gx_version=gx_version,
        validated_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        expectations=outcomes,
    )
    if save:
        folder = _results_dir(case, output_dir, result)
        if folder is not None:
            result = write_evidence(result, folder)
    if fail_fast and not result.success:
        err = QualityError(
            f"data quality suite {suite_name!r} failed on {source}: "
            + "; ".join(_describe_failure(o) for o in result.failed),
            fix=(f"Report: {result.html_path}" if result.html_path else "Fix the data or the suite")
            + ". Fix the data (or, with a reviewer, the suite) and validate again",
        )
        err.result = result  # type: ignore[attr-defined]  # the evidence travels with the error
        raise err
    return result


def write_evidence(result: QualityResult, folder: Path) -> QualityResult:
    """Write the result JSON, its ``.sha256`` file and the HTML report; return them filled in."""
    stamp = result.validated_at.replace(":", "").replace("-", "").replace(".", "")
    base = folder / f"{stamp}-{result.suite}"
    json_path = base.with_suffix(".json")
    html_path = base.with_suffix(".html")
    body = result.as_dict()
    for key in ("json_path", "html_path", "sha256"):
        body.pop(key)
    text = json.dumps(body, indent=2, ensure_ascii=False, default=str) + "\n"
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    atomic_write(json_path, text)
    atomic_write(json_path.with_name(json_path.name + ".sha256"), f"{digest}  {json_path.name}\n")
    done = _replace(result, json_path=json_path, html_path=html_path, sha256=digest)
    atomic_write(html_path, render_html(done))
    return done


def latest_result(case: CaseFile, key: str) -> dict[str, Any] | None:
    """The newest stored result for a dataset (or suite) name, with its sha256 checked."""
    folder = case.root / RESULTS_DIR / key
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not files:
        return None
    path = files[-1]
    raw = read_limited(path, what="quality result", kind="json", fix="Run `idsp quality validate` again")
    try:  # a case member can put anything there: a regular file under a cap, or a clear error
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except ValueError:  # not JSON, not UTF-8, or not an object
        raise UserError("the quality result is not valid JSON", where=str(path), fix="Run `idsp quality validate` again") from None
    digest = hashlib.sha256(raw).hexdigest()
    side = path.with_name(path.name + ".sha256")
    words = read_limited(side, what="quality result checksum", kind="json").split() if side.is_file() else []
    recorded = words[0].decode("utf-8", "replace") if words else None
    data["json_path"] = str(path)
    data["html_path"] = str(path.with_suffix(".html"))
    data["sha256"] = digest
    data["sha256_ok"] = recorded == digest
    return data


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -- internals -------------------------------------------------------------------------------


def _is_dataset(case: CaseFile, name: str) -> bool:
    return any(d.name == name for d in case.spec.datasets)


def _only_suite(case: CaseFile | None, gx_dir) -> str:
    names = list_suites(case, gx_dir)
    if len(names) == 1:
        return names[0]
    raise UserError(
        "which suite? " + (f"the case has {len(names)}: {', '.join(names)}" if names else "gx/ has no suites"),
        where=str(suite_dir(case, gx_dir)),
        fix="Pass --suite NAME, or set `suite:` for the dataset in case.yaml",
    )


def _is_spark_frame(data: Any) -> bool:
    return type(data).__module__.startswith("pyspark.")


def _describe(data: Any, case: CaseFile | None, dataset) -> tuple[str, str | None]:
    """A name for the data and, for files, the sha256 of their bytes."""
    if dataset is not None and case is not None:
        path = case.root / dataset.path
        return f"dataset {dataset.name} ({dataset.path})", file_sha256(path) if path.is_file() else None
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if path.is_file():
            return str(path), file_sha256(path)
        return str(path), None
    return f"in-memory {type(data).__name__}", None


def _load(data: Any, case: CaseFile | None, dataset, engine: str):
    if dataset is not None and case is not None:
        path = case.root / dataset.path
    elif isinstance(data, (str, os.PathLike)):
        path = Path(data)
    else:
        return data
    if not path.exists():
        where = f"{case.root / 'case.yaml'}, dataset {dataset.name}" if dataset and case else str(path)
        raise DataError(
            f"no data at {path}",
            where=where,
            fix="Check the path, or run `dvc pull` to fetch the data version of this case",
        )
    if engine == "spark":
        spark = _spark()
        suffix = path.suffix.lower()
        if suffix == ".parquet" or path.is_dir():
            return spark.read.parquet(str(path))
        if suffix == ".csv":
            return spark.read.option("header", True).option("inferSchema", True).csv(str(path))
        raise DataError(f"the spark engine reads .parquet and .csv, not {suffix!r}", where=str(path))
    try:
        from idsp.data import read_table
    except ImportError:  # idsp.data not installed in this tree yet: plain readers
        import pandas as pd

        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)
    return read_table(path)


def _spark():
    from pyspark.sql import SparkSession

    # 200 shuffle partitions (Spark's default) turn each GX metric into 200 tiny tasks on
    # a laptop-sized box; a cluster session configured elsewhere is reused as it is.
    return (
        SparkSession.builder.master(os.environ.get("IDSP_SPARK_MASTER", "local[2]"))
        .appName("idsp-quality")
        .config("spark.sql.shuffle.partitions", os.environ.get("IDSP_SPARK_SHUFFLE_PARTITIONS", "4"))
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )


def _frame_fingerprint(frame: Any, engine: str, raw: dict[str, Any]) -> str:
    """For in-memory data: GX's own batch fingerprint (it hashes every pandas batch anyway;
    hashing 10 M rows a second time would cost more than our 10 % budget over raw GX)."""
    if engine == "spark":
        return "spark-schema:" + hashlib.sha256(frame.schema.json().encode()).hexdigest() + " (no content hash)"
    marker = ((raw.get("meta") or {}).get("batch_markers") or {}).get("pandas_data_fingerprint")
    if marker:
        return f"pandas-gx-md5:{marker}"
    import pandas as pd

    hashed = pd.util.hash_pandas_object(frame, index=True).to_numpy()
    return "pandas:" + hashlib.sha256(hashed.tobytes()).hexdigest()


def _row_count(frame: Any, engine: str) -> int | None:
    return int(frame.count()) if engine == "spark" else len(frame)


_CONTEXT: dict[str, Any] = {}


def _context(engine: str):
    """One ephemeral GX context per process and engine; building it costs ~0.5 s."""
    if engine in _CONTEXT:
        return _CONTEXT[engine]
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source: Any
    if engine == "spark":
        source = context.data_sources.add_spark(name="idsp-spark")
    else:
        source = context.data_sources.add_pandas(name="idsp-pandas")
    asset = source.add_dataframe_asset(name="frame")
    batch_definition = asset.add_batch_definition_whole_dataframe("whole")
    _CONTEXT[engine] = (gx, batch_definition)
    return _CONTEXT[engine]


def build_gx_suite(spec: dict[str, Any]):
    """A GX ``ExpectationSuite`` from suite JSON; a bad expectation names file and index."""
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    expectations = []
    for i, exp in enumerate(spec["expectations"]):
        try:
            config = ExpectationConfiguration(
                type=exp["type"], kwargs=dict(exp.get("kwargs") or {}), meta=exp.get("meta") or {}
            )
            expectations.append(config.to_domain_obj())
        except Exception as exc:  # GX raises many kinds here; all mean "bad suite entry"
            raise UserError(
                f"expectation {exp['type']!r} is not valid ({str(exc).splitlines()[0][:200]})",
                where=f"{spec.get('_path', spec['name'])}, expectations[{i}]",
                fix="Check the type name and its kwargs against the GX 1.x expectation gallery",
            ) from None
    return gx.ExpectationSuite(name=spec["name"], expectations=expectations, meta=spec.get("meta"))


def _run_gx(frame: Any, spec: dict[str, Any], engine: str) -> tuple[dict[str, Any], str]:
    gx, batch_definition = _context(engine)
    suite = build_gx_suite(spec)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(
        suite,
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": EXAMPLES},
    )
    return result.to_json_dict(), gx.__version__


def _outcome(r: dict[str, Any], personal: bool, marked: set) -> ExpectationOutcome:
    config = r.get("expectation_config") or {}
    kwargs = {k: v for k, v in (config.get("kwargs") or {}).items() if k != "batch_id"}
    column = kwargs.get("column")
    res = r.get("result") or {}
    examples = list(res.get("partial_unexpected_list") or [])[:EXAMPLES]
    masked_examples, masked = _mask_examples(examples, personal or column in marked)
    info = r.get("exception_info") or {}
    error = info.get("exception_message") if info.get("raised_exception") else None
    return ExpectationOutcome(
        type=config.get("type", "?"),
        column=column,
        kwargs=kwargs,
        success=bool(r.get("success")),
        element_count=res.get("element_count"),
        unexpected_count=res.get("unexpected_count"),
        unexpected_percent=_round(res.get("unexpected_percent")),
        examples=tuple(masked_examples),
        examples_masked=masked,
        error=error,
    )


def _mask_examples(values: list[Any], personal_column: bool) -> tuple[list[Any], bool]:
    from idsp import privacy

    out: list[Any] = []
    any_masked = False
    for value in values:
        if value is None:
            out.append(None)
            continue
        kind = _identifier_kind(privacy, value)
        if personal_column or kind:
            out.append(privacy.mask(value, kind))
            any_masked = True
        else:
            out.append(value if isinstance(value, (int, float, bool)) else str(value))
    return out, any_masked


def _identifier_kind(privacy, value: Any) -> str | None:
    if isinstance(value, float):
        return None
    for kind in ("bsn", "iban", "email", "phone"):
        if privacy.KINDS[kind].check(value):
            return kind
    found = privacy.find_identifiers(str(value)) if isinstance(value, str) else []
    return found[0][0] if found else None


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 4)


def _describe_failure(o: ExpectationOutcome) -> str:
    where = f" on column {o.column!r}" if o.column else ""
    if o.error:
        return f"{o.type}{where} raised an error ({o.error.splitlines()[0][:120]})"
    count = "" if o.unexpected_count is None else f": {o.unexpected_count} unexpected"
    pct = "" if o.unexpected_percent is None else f" ({o.unexpected_percent:g} %)"
    return f"{o.type}{where}{count}{pct}"


def _results_dir(case: CaseFile | None, output_dir, result: QualityResult) -> Path | None:
    if output_dir is not None:
        return Path(output_dir)
    if case is None:
        return None
    return case.root / RESULTS_DIR / (result.dataset or result.suite)


def _replace(result: QualityResult, **changes: Any) -> QualityResult:
    from dataclasses import replace

    return replace(result, **changes)


# -- HTML report -----------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem;color:#1b1b1b;max-width:70rem}
h1{font-size:1.4rem}table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f2f2f2}.ok{color:#0a6b2c;font-weight:600}.fail{color:#b00020;font-weight:600}
code{font-size:.85rem}dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}
dt{font-weight:600}.masked{color:#666;font-style:italic}
"""


def render_html(result: QualityResult) -> str:
    """A self-contained HTML page (no scripts, no external files) of one result."""
    e = html.escape
    state = '<span class="ok">passed</span>' if result.success else '<span class="fail">FAILED</span>'
    facts = [
        ("Suite", result.suite),
        ("Data", result.data),
        ("Data fingerprint", result.data_fingerprint),
        ("Rows", result.rows),
        ("Case", result.case_id or "-"),
        ("Engine", result.engine),
        ("Great Expectations", result.gx_version),
        ("Validated at (UTC)", result.validated_at),
        ("Personal data", "yes: examples are masked" if result.personal_data else "no"),
        ("Evidence file", result.json_path.name if result.json_path else "-"),
        ("Evidence sha256", result.sha256 or "-"),
    ]
    rows = []
    for o in result.expectations:
        args = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False, default=str)}" for k, v in o.kwargs.items() if k != "column")
        ok = '<span class="ok">ok</span>' if o.success else '<span class="fail">fail</span>'
        examples = ", ".join(e(json.dumps(x, ensure_ascii=False, default=str)) for x in o.examples)
        if o.examples_masked:
            examples = f'<span class="masked">masked:</span> {examples}'
        if o.error:
            examples = f'<span class="fail">error:</span> {e(o.error.splitlines()[0][:300])}'
        pct = "" if o.unexpected_percent is None else f"{o.unexpected_percent:g} %"
        rows.append(
            f"<tr><td>{ok}</td><td><code>{e(o.type)}</code></td><td>{e(o.column or '')}</td>"
            f"<td><code>{e(args)}</code></td><td>{e(str(o.unexpected_count if o.unexpected_count is not None else ''))}</td>"
            f"<td>{e(pct)}</td><td>{examples}</td></tr>"
        )
    dl = "".join(f"<dt>{e(k)}</dt><dd>{e(str(v))}</dd>" for k, v in facts)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>Data quality: {e(result.suite)}</title><style>{_CSS}</style></head><body>"
        f"<h1>Data quality report: {e(result.suite)} — {state}, "
        f"{result.passed}/{result.evaluated} expectations met</h1><dl>{dl}</dl>"
        "<table><thead><tr><th></th><th>Expectation</th><th>Column</th><th>Arguments</th>"
        "<th>Unexpected</th><th>%</th><th>Examples</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></body></html>\n"
    )
