"""The job commands: run, status, list, stop, wait (`log` is in cli/logs.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import click

from jobyard.cli import lifecycle, output, workflows
from jobyard.cli.state import CliState, pass_state
from jobyard.client.lifecycle import JobEvent
from jobyard.domain.errors import InvalidArgument
from jobyard.domain.jobs import NETWORK_HOST, parse_key_values

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON (proto field names).")
_LIMIT = click.IntRange(min=0)


@click.command(context_settings={"allow_interspersed_args": False})
@click.option(
    "--max-cpu",
    type=_LIMIT,
    default=0,
    metavar="N",
    help="CPU limit, percent of one core (0 = server default).",
)
@click.option(
    "--max-memory",
    type=_LIMIT,
    default=0,
    metavar="MB",
    help="Memory limit in MB (0 = server default).",
)
@click.option(
    "--max-iobps", type=_LIMIT, default=0, metavar="B", help="I/O limit in bytes/s (0 = unlimited)."
)
@click.option(
    "--max-pids", type=_LIMIT, default=0, metavar="N", help="Process limit (0 = server default)."
)
@click.option(
    "--max-disk",
    type=_LIMIT,
    default=0,
    metavar="MB",
    help="MB the job may write to /work and its output together (0 = server default).",
)
@click.option(
    "--cpu-cores", default="", metavar="LIST", help="CPUs the job may use, e.g. 0-1 or 0,2."
)
@click.option(
    "--network",
    default=NETWORK_HOST,
    show_default=True,
    metavar="MODE",
    help="host: the host's network; none: only loopback; isolated: a namespace of its own; "
    "NAME: a created network (jobyard network create).",
)
@click.option("--name", default="", help="A human-readable name for the job.")
@click.option(
    "--replicas",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    metavar="N",
    help="Run COMMAND N times, as ranks 0..N-1 of one job sharing its limits "
    "(each reads its rank in /run/jobyard and $JOBYARD_RANK; `log --rank I`).",
)
@click.option(
    "--backend",
    default="",
    metavar="NAME",
    help="Where the job runs: local or slurm (default: the server's).",
)
@click.option(
    "--env", "env", multiple=True, metavar="K=V", help="Environment variable (repeatable)."
)
@click.option(
    "--secret-env", multiple=True, metavar="K=V", help="Secret variable, never shown (repeatable)."
)
@click.option(
    "--time",
    "time_limit",
    type=lifecycle.Duration(),
    default=0.0,
    help="Wall-time limit from the start: 90s, 30m, 2h (default: the server's jobTimeout).",
)
@click.option(
    "--schedule",
    type=lifecycle.When(+1),
    help="Start no earlier than this: RFC 3339 or +10m from now.",
)
@click.option("--label", "labels", multiple=True, metavar="K=V", help="Label (repeatable).")
@click.option(
    "--upload",
    "uploads",
    multiple=True,
    type=click.Path(exists=True, file_okay=True, dir_okay=True),
    metavar="PATH",
    help="File or directory placed in the job's /work before it starts (repeatable).",
)
@click.option(
    "--volume", "volumes", multiple=True, metavar="NAME", help="Mount a volume at /volumes/NAME."
)
@click.option(
    "--runtime", default="", metavar="NAME", help="Run with a runtime (its bin/ on PATH)."
)
@click.option(
    "--workflow", metavar="FILE", help="Run the YAML workflow in FILE instead of one command."
)
@_JSON
@click.argument("command", required=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@pass_state
def run(
    state: CliState,
    command: str | None,
    workflow: str | None,
    args: tuple[str, ...],
    max_cpu: int,
    max_memory: int,
    max_iobps: int,
    max_pids: int,
    max_disk: int,
    cpu_cores: str,
    network: str,
    name: str,
    replicas: int,
    backend: str,
    env: tuple[str, ...],
    secret_env: tuple[str, ...],
    time_limit: float,
    schedule: datetime | None,
    labels: tuple[str, ...],
    uploads: tuple[str, ...],
    volumes: tuple[str, ...],
    runtime: str,
    as_json: bool,
) -> None:
    """Start COMMAND with ARGS as a new job.

    Options go before COMMAND; everything after COMMAND belongs to it.

    \b
    Examples:
      jobyard run echo "hello world"
      jobyard run --max-cpu=50 python3 script.py
      jobyard run --max-memory=1024 --env MODE=fast java -jar app.jar
      jobyard run --network=none --max-pids=64 python3 untrusted.py
      jobyard run --max-disk=500 sh -c 'make > build.log'
      jobyard run bash -c "sleep 10 && echo done"
      jobyard run --time 2h --schedule +10m --label team=red make test
      jobyard run --backend slurm --time 1h --replicas 2 hostname
      jobyard run --replicas 4 sh -c 'echo rank $JOBYARD_RANK of $JOBYARD_NUMBER_OF_NODES'
      jobyard run --upload script.py --upload data/ python3 script.py
      jobyard run --workflow=pipeline.yaml
    """
    if workflow is not None:
        if command is not None:
            raise click.UsageError("give either --workflow FILE or a COMMAND, not both")
        workflows.run(state, workflow, as_json)
        return
    if command is None:
        raise click.UsageError("missing COMMAND (or --workflow FILE)")
    job = state.client().submit(
        command,
        args,
        name=name,
        max_cpu=max_cpu,
        max_memory=max_memory,
        max_iobps=max_iobps,
        max_pids=max_pids,
        max_disk=max_disk,
        cpu_cores=cpu_cores,
        network=network,
        replicas=replicas,
        backend=backend,
        env=_key_values(env, "--env"),
        secret_env=_key_values(secret_env, "--secret-env"),
        time_limit=time_limit,
        schedule=schedule,
        labels=lifecycle.labels_option(labels),
        uploads=uploads,
        volumes=volumes,
        runtime=runtime,
    )
    click.echo(output.as_json(job) if as_json else output.started(job))


def _key_values(items: Sequence[str], option: str) -> dict[str, str]:
    try:
        return parse_key_values(items, option)
    except InvalidArgument as exc:
        raise click.BadParameter(str(exc), param_hint=option) from exc


@click.command()
@click.argument("id")
@click.option("--workflow", "is_workflow", is_flag=True, help="ID is a workflow: show its jobs.")
@_JSON
@pass_state
def status(state: CliState, id: str, is_workflow: bool, as_json: bool) -> None:
    """Show one job: status, times, limits, exit code.

    \b
    Examples:
      jobyard status f47ac10b-58cc-4372-a567-0e02b2c3d479
      jobyard status --workflow a1b2c3d4-e5f6-7890-1234-567890abcdef
    """
    if is_workflow:
        workflows.show(state, id, as_json)
        return
    details = state.client().details(id)
    click.echo(output.as_json(details) if as_json else output.details(details))


@click.command(name="list")
@click.option("--workflow", "is_workflow", is_flag=True, help="List workflows instead of jobs.")
@click.option("--status", "status", multiple=True, help="Only jobs in this status (repeatable).")
@click.option("--name", default="", help="Only jobs with this name.")
@click.option("--label", "labels", multiple=True, metavar="K=V", help="Only jobs with this label.")
@click.option("--owner", default="", help="Only jobs submitted by this certificate CN.")
@click.option("--since", type=lifecycle.When(-1), help="Created after: RFC 3339, or 2h (ago).")
@click.option("--before", type=lifecycle.When(-1), help="Created before: RFC 3339, or 2h (ago).")
@click.option("--limit", type=click.IntRange(1, 1000), help="One page of at most N jobs.")
@click.option("--page-token", default="", help="The page after the one that printed this token.")
@click.option("--table", is_flag=True, help="Print a table.")
@_JSON
@pass_state
def list_jobs(
    state: CliState,
    is_workflow: bool,
    status: tuple[str, ...],
    name: str,
    labels: tuple[str, ...],
    owner: str,
    since: datetime | None,
    before: datetime | None,
    limit: int | None,
    page_token: str,
    table: bool,
    as_json: bool,
) -> None:
    """List jobs, one line each: all of them oldest first, or with any filter the matching
    ones newest first (--limit N pages; the next page's token goes to stderr).

    \b
    Examples:
      jobyard list
      jobyard list --status RUNNING --label team=red --since 2h --table
      jobyard list --limit 20 --json
      jobyard list --workflow
    """
    if is_workflow:
        workflows.listing(state, as_json)
        return
    query = {"status": status, "name": name, "labels": lifecycle.labels_option(labels),
             "owner": owner, "created_after": since, "created_before": before}  # fmt: skip
    view = "json" if as_json else "table" if table else "lines"
    lifecycle.listing(state, query, view, limit=limit, page_token=page_token)


@click.command()
@click.argument("id")
@click.option(
    "--workflow", "is_workflow", is_flag=True, help="ID is a workflow: stop all its jobs."
)
@_JSON
@pass_state
def stop(state: CliState, id: str, is_workflow: bool, as_json: bool) -> None:
    """Stop a running job: SIGTERM to all its processes, then SIGKILL.

    \b
    Examples:
      jobyard stop f47ac10b-58cc-4372-a567-0e02b2c3d479
      jobyard stop --workflow a1b2c3d4-e5f6-7890-1234-567890abcdef
    """
    if is_workflow:
        workflows.stop(state, id, as_json)
        return
    result = state.client().stop(id)
    click.echo(output.as_json(result) if as_json else output.stopped(result))


@click.command()
@click.argument("id")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Give up after this long (exit status 1).",
)
@_JSON
@pass_state
def wait(state: CliState, id: str, timeout: float | None, as_json: bool) -> None:
    """Wait until a job has ended, then show it as `status` does.

    \b
    Example:
      jobyard wait --timeout 60 f47ac10b-58cc-4372-a567-0e02b2c3d479
    """
    shown: list[str] = []

    def progress(event: JobEvent) -> None:
        # On stderr, so that stdout stays the job alone (--json); once per status.
        if not event.job.done and (not shown or shown[-1] != event.job.status):
            shown.append(event.job.status)
            click.echo(f"Waiting for job {event.job.id}: {event.job.status}", err=True)

    job = state.client().wait(id, timeout=timeout, on_event=progress)
    click.echo(output.as_json(job) if as_json else output.status(job))


COMMANDS = (run, status, list_jobs, stop, wait)
