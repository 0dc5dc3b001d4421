"""The `log` command: a job's output, from the start or its last lines, followed live."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import click

from jobyard.cli.state import CliState, pass_state

# How long `log -f` keeps trying to resume a broken stream (server restart, network) while
# no byte arrives, before it gives up with the last error.
RECONNECT_SECONDS = 300.0

# Words taken as the value of a bare "-f"/"--follow" ("--follow false ID"); anything else
# after it is the job id ("-f ID"), as in the seed's `rnx log -f ID`.
_FOLLOW_WORDS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


class _FollowValue(click.ParamType[bool]):
    name = "true|false"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> bool:
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word not in _FOLLOW_WORDS:
            self.fail(f"{value!r} is not one of true, false, 1, 0, yes, no", param, ctx)
        return _FOLLOW_WORDS[word]


class _LogCommand(click.Command):
    """``-f``/``--follow`` takes an optional value: ``-f ID``, ``--follow=false ID``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, attach_follow_values(args))


def attach_follow_values(args: Sequence[str]) -> list[str]:
    """Rewrite a bare ``-f``/``--follow`` so that click never takes the job id as its value."""
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            out.extend(args[i:])
            break
        if arg in ("-f", "--follow"):
            rest = args[i + 1 :]
            # "--follow false ID": a boolean word followed by something else is the value.
            if len(rest) >= 2 and rest[0].lower() in _FOLLOW_WORDS:
                out.append(f"--follow={rest[0]}")
                i += 2
                continue
            arg = "--follow=true"
        out.append(arg)
        i += 1
    return out


@click.command(cls=_LogCommand)
@click.option(
    "-f",
    "--follow",
    type=_FollowValue(),
    default="true",
    show_default=True,
    help="Follow the log stream until the job ends; --follow=false prints the history only.",
)
@click.option(
    "--tail",
    type=click.IntRange(min=0),
    default=0,
    metavar="N",
    help="Start with the last N lines (0 = from the start).",
)
@click.option(
    "--offset",
    type=click.IntRange(min=0),
    default=0,
    metavar="BYTES",
    help="Start at this byte of the output (ignored with --tail).",
)
@click.option(
    "--rank",
    type=click.IntRange(min=0),
    default=0,
    metavar="I",
    help="Print replica rank I's output (default 0: the job's output).",
)
@click.argument("id")
@pass_state
def log(state: CliState, follow: bool, tail: int, offset: int, rank: int, id: str) -> None:
    """Print a job's output (stdout and stderr merged), following it live by default.

    While following, a broken connection (e.g. a server restart) is resumed from the next
    byte, so every byte is printed exactly once.

    \b
    Examples:
      jobyard log f47ac10b-58cc-4372-a567-0e02b2c3d479               # all output, then live
      jobyard log --tail 20 f47ac10b                                 # last 20 lines, then live
      jobyard log --follow=false f47ac10b-58cc-4372-a567-0e02b2c3d479  # history only
      jobyard log --rank 2 f47ac10b                                  # replica rank 2's output
    """
    client = state.client()
    # The header goes to stderr so that stdout carries exactly the job's bytes.
    click.echo(f"Logs for job {id} (Press Ctrl+C to exit if streaming):", err=True)
    sys.stdout.flush()
    out = sys.stdout.buffer
    chunks = client.read_logs(
        id,
        offset=offset,
        tail=tail,
        follow=follow,
        reconnect=RECONNECT_SECONDS if follow else 0.0,
        on_retry=_tell,
        rank=rank,
    )
    try:
        for chunk in chunks:
            out.write(chunk.data)
            out.flush()
    except BrokenPipeError:
        _silence_stdout()


def _tell(notice: str) -> None:
    click.echo(f"jobyard: {notice}", err=True)


def _silence_stdout() -> None:
    """The reader went away (``| head``): stop quietly, and let exit not flush into the pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
