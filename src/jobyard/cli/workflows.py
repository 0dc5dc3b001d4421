"""Workflow output and actions behind `run --workflow`, `status --workflow`, `list --workflow`."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from jobyard.cli.state import CliState
from jobyard.client.workflows import WorkflowInfo, WorkflowStatus

_JOB_ROW = "{:<40} {:<20} {:<12} {:<10} {:<20}"
_WF_ROW = "{:<38} {:<20} {:<10} {:>5} {:>9} {:>6}  {}"


def table(status: WorkflowStatus) -> str:
    """The seed's workflow status table, under a one-line summary."""
    wf = status.workflow
    lines = [
        f"Workflow: {wf.id} ({wf.name})",
        f"Status: {wf.status}  Jobs: {wf.completed_jobs}/{wf.total_jobs} completed, "
        f"{wf.failed_jobs} failed or stopped, {wf.canceled_jobs} never started",
        "",
        _JOB_ROW.format("JOB ID", "JOB NAME", "STATUS", "EXIT CODE", "DEPENDENCIES"),
        "-" * 117,
    ]
    for job in status.jobs:
        ended = job.end_time != ""
        lines.append(
            _JOB_ROW.format(
                job.job_id,
                job.name,
                job.status,
                str(job.exit_code) if ended else "-",
                ", ".join(job.dependencies) or "-",
            ).rstrip()
        )
    return "\n".join(lines)


def summaries(workflows: list[WorkflowInfo]) -> str:
    if not workflows:
        return "No workflows"
    lines = [_WF_ROW.format("WORKFLOW ID", "NAME", "STATUS", "JOBS", "COMPLETED", "FAILED",
                            "CREATED")]  # fmt: skip
    for wf in workflows:
        counts = (wf.total_jobs, wf.completed_jobs, wf.failed_jobs)
        lines.append(_WF_ROW.format(wf.id, wf.name[:20], wf.status, *counts, wf.created_time))
    return "\n".join(lines)


def _json(status: WorkflowStatus) -> str:
    return json.dumps(asdict(status), indent=2)


def run(state: CliState, path: str, as_json: bool) -> None:
    file = Path(path)
    try:
        document = file.read_text()
    except OSError as exc:
        message = f"cannot read {path}: {exc.strerror}"
        raise click.BadParameter(message, param_hint="--workflow") from exc
    status = state.client().run_workflow(document, name=file.name, base=file.parent)
    if as_json:
        click.echo(_json(status))
        return
    click.echo(f"Workflow started:\nID: {status.workflow.id}\nJobs: {status.workflow.total_jobs}")


def show(state: CliState, id: str, as_json: bool) -> None:
    status = state.client().workflow(id)
    click.echo(_json(status) if as_json else table(status))


def listing(state: CliState, as_json: bool) -> None:
    workflows = state.client().workflows()
    if as_json:
        click.echo(json.dumps([asdict(w) for w in workflows], indent=2))
        return
    click.echo(summaries(workflows))


def stop(state: CliState, id: str, as_json: bool) -> None:
    status = state.client().stop_workflow(id)
    click.echo(_json(status) if as_json else table(status))
