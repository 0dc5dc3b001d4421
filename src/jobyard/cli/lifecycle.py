"""Lifecycle commands: extend, delete, files, download; and the time options of run and list.

Times on the command line are RFC 3339 (``2024-01-15T10:30:00Z``) or relative: ``--schedule
+10m`` is ten minutes from now, ``--since 2h`` two hours ago.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from jobyard.cli import output
from jobyard.cli.state import CliState, pass_state
from jobyard.client import Job, JobFile
from jobyard.config import format_duration, parse_duration
from jobyard.domain.errors import InvalidArgument
from jobyard.domain.jobs import parse_key_values

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON (proto field names).")
TABLE_WIDTH = 160  # when stdout is not a terminal


class Duration(click.ParamType[float]):
    """``90s``, ``30m``, ``2h``, ``1d`` or seconds, as seconds."""

    name = "DURATION"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            return value
        try:
            return parse_duration(value)
        except InvalidArgument as exc:
            self.fail(str(exc), param, ctx)


class When(click.ParamType[datetime]):
    """An RFC 3339 time, or a duration relative to now: ``+10m`` ahead, ``10m`` ago."""

    name = "TIME"

    def __init__(self, relative_sign: int) -> None:
        self._sign = relative_sign  # +1: a bare duration is ahead (schedules); -1: ago

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        try:
            if text[:1] in "+-" and text[1:2].isdigit():
                sign = -1 if text[0] == "-" else 1
                return datetime.now(UTC) + sign * timedelta(seconds=parse_duration(text[1:]))
            if text[:1].isdigit() and "T" not in text and "-" not in text:
                return datetime.now(UTC) + self._sign * timedelta(seconds=parse_duration(text))
            ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except (InvalidArgument, ValueError):
            self.fail(f"{value!r} is neither an RFC 3339 time nor a duration like +10m", param, ctx)
        return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def labels_option(items: Sequence[str]) -> dict[str, str]:
    try:
        return parse_key_values(items, "--label")
    except InvalidArgument as exc:
        raise click.BadParameter(str(exc), param_hint="--label") from exc


# -- list ------------------------------------------------------------------------------------


def listing(
    state: CliState, query: dict[str, Any], view: str, *, limit: int | None, page_token: str
) -> None:
    """Print jobs for ``jobyard list``: every job (the seed's call) when nothing narrows the
    listing, else the matching ones, newest first; with ``--limit`` one page of them."""
    client = state.client()
    token = page_token
    query["status"] = [part for item in query["status"] for part in item.split(",") if part]
    narrowed = any(query.values()) or limit is not None or token
    if not narrowed:
        jobs: Sequence[Job] = client.jobs()
    elif limit is None and not token:
        jobs = list(client.iter_jobs(**query))
    else:
        page = client.list_jobs(**query, page_size=limit or 0, page_token=token)
        jobs = page.jobs
        if page.next_page_token:
            click.echo(f"More jobs: --page-token {page.next_page_token}", err=True)
    if view == "json":
        click.echo(output.as_json(jobs))
    elif view == "table":
        click.echo(job_table(jobs))
    else:
        click.echo(output.job_list(jobs))


def job_table(jobs: Sequence[Job]) -> str:
    if not jobs:
        return "No jobs"
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("ID", "NAME", "STATUS", "OWNER", "CREATED", "EXPIRES", "COMMAND"):
        table.add_column(column, no_wrap=column != "COMMAND", overflow="fold")
    for job in jobs:
        table.add_row(job.id, job.name, job.status, job.owner, job.created_time,
                      job.expires_at, job.command_line)  # fmt: skip
    return render(table)


def render(table: Table) -> str:
    width = None if sys.stdout.isatty() else TABLE_WIDTH
    console = Console(file=io.StringIO(), width=width, highlight=False, soft_wrap=False)
    console.print(table)
    return console.file.getvalue().rstrip("\n")  # type: ignore[attr-defined, no-any-return]


# -- commands -----------------------------------------------------------------------------------


@click.command()
@click.argument("id")
@click.argument("duration", type=Duration())
@_JSON
@pass_state
def extend(state: CliState, id: str, duration: float, as_json: bool) -> None:
    """Give a job DURATION more wall time (90s, 30m, 2h, 1d).

    \b
    Example:
      jobyard extend f47ac10b 30m
    """
    job = state.client().extend(id, duration)
    if as_json:
        click.echo(output.as_json(job))
        return
    click.echo("\n".join([
        "Job extended:",
        f"ID: {job.id}",
        f"TimeLimit: {format_duration(job.time_limit_seconds)}",
        f"ExpiresAt: {job.expires_at or '(when it starts)'}",
    ]))  # fmt: skip


@click.command()
@click.argument("id")
@pass_state
def delete(state: CliState, id: str) -> None:
    """Delete a finished job with its output and files (admin).

    \b
    Example:
      jobyard delete f47ac10b
    """
    click.echo(f"Job deleted: {state.client().delete(id)}")


@click.command()
@click.argument("id")
@_JSON
@pass_state
def files(state: CliState, id: str, as_json: bool) -> None:
    """List the files a job left in its work directory, with size and SHA-256.

    \b
    Example:
      jobyard files f47ac10b
    """
    found = state.client().files(id)
    if as_json:
        click.echo(json.dumps([f.to_dict() for f in found], indent=2))
    else:
        click.echo(file_table(found))


def file_table(found: Sequence[JobFile]) -> str:
    if not found:
        return "No files"
    width = max(len("PATH"), *(len(f.path) for f in found))
    size_width = max(len("SIZE"), *(len(str(f.size)) for f in found))
    lines = [f"{'PATH':<{width}}  {'SIZE':>{size_width}}  SHA256"]
    lines += [f"{f.path:<{width}}  {f.size:>{size_width}}  {f.sha256}" for f in found]
    return "\n".join(lines)


@click.command()
@click.argument("id")
@click.argument("path")
@click.option(
    "-o",
    "--output",
    "dest",
    metavar="DEST",
    help="Where to write: a file, a directory, or - for stdout (default: PATH's name here).",
)
@pass_state
def download(state: CliState, id: str, path: str, dest: str | None) -> None:
    """Download one file of a job's work directory (streamed; large files are fine).

    \b
    Examples:
      jobyard download f47ac10b results/out.csv -o out.csv
      jobyard download f47ac10b log.txt -o - | less
    """
    client = state.client()
    if dest == "-":
        size = client.download(id, path, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        click.echo(f"Downloaded {path} ({size} bytes)", err=True)
        return
    target = Path(dest) if dest else Path(Path(path).name)
    size = client.download(id, path, target)
    final = target / Path(path).name if target.is_dir() else target
    click.echo(f"Downloaded {path} ({size} bytes) to {final}")


COMMANDS = (extend, delete, files, download)

__all__ = ["COMMANDS", "Duration", "When", "labels_option", "listing"]
