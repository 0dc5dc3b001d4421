"""The control commands: suspend and resume a running job (admin)."""

from __future__ import annotations

import click

from jobyard.cli import output
from jobyard.cli.state import CliState, pass_state
from jobyard.client import JobDetails

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON (proto field names).")


def _changed(heading: str, details: JobDetails, as_json: bool) -> str:
    if as_json:
        return output.as_json(details)
    return "\n".join([heading, f"ID: {details.job.id}", f"Status: {details.job.status}"])


@click.command()
@click.argument("id")
@_JSON
@pass_state
def suspend(state: CliState, id: str, as_json: bool) -> None:
    """Freeze every process of a running job; it keeps its memory and makes no progress.

    `jobyard resume ID` continues it where it was. Time spent suspended is recorded.

    \b
    Example:
      jobyard suspend f47ac10b-58cc-4372-a567-0e02b2c3d479
    """
    details = state.client().suspend(id)
    click.echo(_changed("Job suspended:", details, as_json))


@click.command()
@click.argument("id")
@_JSON
@pass_state
def resume(state: CliState, id: str, as_json: bool) -> None:
    """Thaw a suspended job: it continues where it was.

    \b
    Example:
      jobyard resume f47ac10b-58cc-4372-a567-0e02b2c3d479
    """
    details = state.client().resume(id)
    click.echo(_changed("Job resumed:", details, as_json))


COMMANDS = (suspend, resume)
