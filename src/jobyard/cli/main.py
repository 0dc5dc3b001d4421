"""The ``jobyard`` command group, its global options and error handling."""

from __future__ import annotations

from typing import Any

import click

import jobyard
from jobyard.cli.certs import certs as certs_group
from jobyard.cli.control import COMMANDS as CONTROL_COMMANDS
from jobyard.cli.jobs import COMMANDS as JOB_COMMANDS
from jobyard.cli.lifecycle import COMMANDS as LIFECYCLE_COMMANDS
from jobyard.cli.logs import log as log_command
from jobyard.cli.monitor import COMMANDS as MONITOR_COMMANDS
from jobyard.cli.resources import COMMANDS as RESOURCE_COMMANDS
from jobyard.cli.server import server as server_command
from jobyard.cli.state import EXIT_INTERRUPTED, CliState
from jobyard.cli.tokens import tokens as tokens_group
from jobyard.cli.wallets import wallets as wallets_group
from jobyard.client.settings import env_help
from jobyard.domain.errors import JobyardError


class JobyardGroup(click.Group):
    """Prints any jobyard error as ``Error: <message>`` on stderr and exits with status 1;
    Ctrl+C exits quietly with status 130."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (JobyardError, TimeoutError) as exc:
            raise click.ClickException(str(exc)) from exc
        except KeyboardInterrupt:
            ctx.exit(EXIT_INTERRUPTED)


@click.group(cls=JobyardGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--server", metavar="HOST:PORT", help=f"Server address ({env_help('server')}).")
@click.option("--cert", metavar="PATH", help=f"Client certificate ({env_help('cert')}).")
@click.option("--key", metavar="PATH", help=f"Client private key ({env_help('key')}).")
@click.option("--ca", metavar="PATH", help=f"CA certificate ({env_help('ca')}).")
@click.option(
    "--insecure",
    is_flag=True,
    help="Connect without TLS, to a server started with --insecure-dev (development only).",
)
@click.version_option(jobyard.__version__, "--version", prog_name="jobyard")
@click.pass_context
def cli(
    ctx: click.Context,
    server: str | None,
    cert: str | None,
    key: str | None,
    ca: str | None,
    insecure: bool,
) -> None:
    """Run commands as isolated, resource-limited jobs on a jobyard server.

    \b
    Examples:
      jobyard certs init --dir certs
      jobyard server --certs certs --data-dir ./data &
      jobyard run bash -c "sleep 1 && echo done"
      jobyard list
      jobyard --server=prod.example.com:50051 \\
        --cert=certs/admin-client-cert.pem --key=certs/admin-client-key.pem status ID
    """
    ctx.obj = CliState(server=server, cert=cert, key=key, ca=ca, insecure=insecure)


for _command in (*JOB_COMMANDS, log_command, *CONTROL_COMMANDS, certs_group, server_command,
                 tokens_group):  # fmt: skip
    cli.add_command(_command)
for _command in (*LIFECYCLE_COMMANDS, *MONITOR_COMMANDS, wallets_group, *RESOURCE_COMMANDS):
    cli.add_command(_command)


def main() -> None:
    """The console-script entry point."""
    cli.main(prog_name="jobyard")
