"""`idsp quality`: validate a dataset or a file against a Great Expectations suite of the case.

Rule: parse and print only; ``idsp.quality`` does the work and is imported inside the
command, so ``idsp quality --help`` never loads pandas or Great Expectations.
"""

from __future__ import annotations

from pathlib import Path

import typer

from idsp.cli._common import JSON_OPTION, console, print_json, spinner

app = typer.Typer(
    help="Data quality: validate data against the case's Great Expectations suites (gx/).",
    no_args_is_help=True,
)


@app.command("validate")
def validate(
    target: str = typer.Argument(
        ..., metavar="DATASET_OR_PATH", help="A dataset name from case.yaml, or a CSV/Parquet file."
    ),
    suite: str = typer.Option(
        None, "--suite", "-s", help="Suite name (gx/NAME.json). Default: the dataset's suite."
    ),
    engine: str = typer.Option("pandas", "--engine", help="pandas (default) or spark."),
    case_dir: Path = typer.Option(None, "--case", help="Case folder (default: found from here up)."),
    gx_dir: Path = typer.Option(None, "--gx-dir", help="Suite folder, for files outside a case."),
    output_dir: Path = typer.Option(
        None, "--output", "-o", help="Where to write the evidence (default: the case's quality/)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Validate; exit 0 when every expectation is met, 1 when the suite fails.

    The result is written as JSON with a .sha256 file and a self-contained HTML report.
    Examples of unexpected values are masked for personal-data columns.
    """
    from idsp import quality
    from idsp.case import Case
    from idsp.errors import CaseError

    case = None  # outside a case, --gx-dir says where the suites are
    if gx_dir is None or case_dir is not None:
        try:
            case = Case.open(case_dir)
        except CaseError:
            if gx_dir is None:
                raise
    with spinner(not as_json) as step:
        step(f"validating {target} (Great Expectations, {engine or 'pandas'})")
        result = quality.validate(
            target,
            suite,
            case=case,
            engine=engine,
            fail_fast=False,
            gx_dir=gx_dir,
            output_dir=output_dir,
        )
    if as_json:
        print_json(result.as_dict())
    else:
        _print(result)
    if not result.success:
        raise typer.Exit(1)


def _print(result) -> None:
    from rich.table import Table

    out = console()
    style = "green" if result.success else "bold red"
    out.print(f"[{style}]{result.summary()}[/] on {result.data}", highlight=False)
    table = Table(show_lines=False)
    for col in ("", "expectation", "column", "unexpected", "examples"):
        table.add_column(col)
    for o in result.expectations:
        mark = "[green]ok[/]" if o.success else "[red]fail[/]"
        unexpected = "" if o.unexpected_count is None else f"{o.unexpected_count} ({o.unexpected_percent:g} %)"
        examples = o.error or ", ".join(str(x) for x in o.examples)
        if o.examples_masked and not o.error:
            examples = "masked: " + examples
        table.add_row(mark, o.type, o.column or "", unexpected, examples)
    out.print(table)
    if result.json_path:
        out.print(f"evidence: {result.json_path} (sha256 {result.sha256})", highlight=False)
        out.print(f"report:   {result.html_path}", highlight=False)
