"""`idsp data`: find identifiers, pseudonymise them, manage pseudonymisation keys."""

from __future__ import annotations

from pathlib import Path

import typer

from idsp.cli._common import JSON_OPTION, console, console_err, print_json, spinner
from idsp.errors import PIIFound, UserError

app = typer.Typer(help="Scan data for identifiers, pseudonymise them, manage keys.", no_args_is_help=True)


@app.command("scan")
def scan_cmd(
    paths: list[Path] = typer.Argument(..., help="Tables (.csv .xlsx .parquet) or text files."),
    fail_on_pii: bool = typer.Option(False, "--fail-on-pii", help="Exit 1 when anything is found."),
    min_share: float = typer.Option(0.5, help="Share of a column that must look like KvK/postcode."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Report identifiers (BSN, IBAN, KvK, e-mail, phone, postcode) per column or line.

    The same check guards MLflow. A text file over 20 MiB is refused (exit 1), not skipped.
    """
    from idsp.scanning import scan_path

    results = []
    with spinner(not as_json) as step:
        for p in paths:
            step(f"scanning {p}")
            results.append(scan_path(p, min_share=min_share))
    found = [r for r in results if r.findings]
    if as_json:
        print_json([r.as_dict() for r in results])
    else:
        _print_scan(results)
    if fail_on_pii and found:
        raise PIIFound(
            f"raw identifiers found in {len(found)} file(s): "
            + ", ".join(str(r.path) for r in found),
            fix="Pseudonymise them (`idsp data pseudonymise`) or remove them; a line that must "
            "keep a look-alike can end with the comment `idsp: allow-pii`",
        )


def _print_scan(results) -> None:
    from rich.table import Table

    out = console()
    for result in results:
        if result.skipped:
            out.print(f"[dim]{result.path}: skipped ({result.skipped})[/]")
            continue
        if not result.findings:
            out.print(f"[green]{result.path}: no identifiers found[/] ({result.rows} rows)")
            continue
        table = Table(title=f"{result.path}", title_justify="left")
        for col in ("where", "kind", "count", "share", "examples (masked)"):
            table.add_column(col)
        for f in result.findings:
            where = f.column + (" (in text)" if f.embedded else "")
            table.add_row(where, f.kind, str(f.count), f"{f.share:.1%}", ", ".join(f.examples))
        out.print(table)


@app.command("pseudonymise")
def pseudonymise_cmd(
    source: Path = typer.Argument(..., help="Input table."),
    target: Path = typer.Argument(..., help="Output table (.parquet)."),
    columns: str = typer.Option(..., "--columns", help="Comma-separated columns; col:kind forces a kind."),
    domain: str = typer.Option(..., "--domain", help="Pseudonymisation domain (its key is used)."),
    allow_invalid: bool = typer.Option(
        False, "--allow-invalid", help="Write even if some values are not valid identifiers (they become empty)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Replace identifier columns by keyed pseudonyms (HMAC-SHA256) and write Parquet."""
    from idsp.data import read_table, write_table
    from idsp.errors import Refused
    from idsp.privacy import pseudonymise

    wanted: dict[str, str] = {}
    for item in filter(None, (c.strip() for c in columns.split(","))):
        name, _, kind = item.partition(":")
        wanted[name] = kind
    if not wanted:
        raise UserError("--columns names no column", fix="e.g. --columns bsn,kvk:kvk")
    if Path(target).suffix.lower() not in (".parquet", ".pq"):
        raise UserError("the output must be a .parquet file", where=str(target))
    with spinner(not as_json) as step:
        step(f"reading {source}")
        frame = read_table(source, schema={c: "str" for c in wanted}, infer=False)
        step(f"pseudonymising {len(frame):,} rows ({', '.join(wanted)})")
        result = pseudonymise(frame, wanted, domain)
    report = result.report
    if report.invalid and not allow_invalid:
        detail = "; ".join(
            f"{col}: {len(rows)} value(s), first at data row {rows[0] + 1}" for col, rows in report.invalid.items()
        )
        if as_json:
            print_json(report.as_dict() | {"written": False})
        raise Refused(
            f"not written: some values are not valid identifiers ({detail})",
            where=str(source),
            fix="Correct them at the source, or pass --allow-invalid to write them as empty",
        )
    with spinner(not as_json) as step:
        step(f"writing {target}")
        write_table(result.frame, target)
    if as_json:
        print_json(report.as_dict() | {"written": str(target)})
        return
    out = console()
    for col, kind in report.columns.items():
        out.print(f"{col} ({kind}): {report.pseudonymised[col]} pseudonymised, "
                  f"{len(report.invalid.get(col, []))} invalid left empty")
    out.print(f"wrote {target} with key {report.key_id}")


@app.command("keygen")
def keygen_cmd(
    domain: str = typer.Argument(..., help="Pseudonymisation domain, e.g. bsn-nvwa."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create the key of a new pseudonymisation domain in the platform's key store."""
    from idsp.keys import KeyStore

    store = KeyStore.from_config()
    key = store.generate(domain)
    if as_json:
        print_json({"domain": domain, "key_id": key.key_id, "path": str(store.path(domain))})
    else:
        console().print(f"created key {key.key_id} at {store.path(domain)} (mode 0600)")
        console_err().print("Back up the key store: pseudonyms cannot be linked again without it.")


@app.command("keys")
def keys_cmd(as_json: bool = JSON_OPTION) -> None:
    """List the pseudonymisation domains and their key ids (never the keys)."""
    from idsp.keys import KeyStore

    store = KeyStore.from_config()
    rows = [{"domain": d, "key_id": store.load(d).key_id} for d in store.domains()]
    if as_json:
        print_json(rows)
    elif not rows:
        console().print(f"no keys in {store.folder}; create one with `idsp data keygen DOMAIN`")
    else:
        for row in rows:
            console().print(f"{row['domain']}: {row['key_id']}")
