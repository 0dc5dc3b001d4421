"""``jobyard certs``: make the CA, server and client certificates for mutual TLS."""

from __future__ import annotations

from pathlib import Path

import click

from jobyard import certs as certificates
from jobyard.domain.errors import FailedPrecondition, InvalidArgument

_DIR = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default="certs",
    show_default=True,
    help="Directory holding the CA and certificates.",
)


@click.group()
def certs() -> None:
    """Create the certificate authority and certificates jobyard's mutual TLS needs.

    \b
    Examples:
      jobyard certs init --dir certs
      jobyard certs client --dir certs --name alice --role user --project physics
    """


@certs.command()
@_DIR
@click.option(
    "--force", is_flag=True, help="Replace an existing CA (old certificates stop working)."
)
@click.option(
    "--host",
    "hosts",
    multiple=True,
    metavar="NAME|IP",
    help="Extra server name or IP (repeatable); localhost, 127.0.0.1 and ::1 are always included.",
)
def init(directory: Path, force: bool, hosts: tuple[str, ...]) -> None:
    """Create a CA, a server certificate and admin and viewer client certificates.

    client-cert.pem/client-key.pem are a copy of the admin pair: the client's default paths
    (certs/client-cert.pem) then work from the directory holding certs/.

    \b
    Example:
      jobyard certs init --dir certs --host jobs.example.com
    """
    try:
        written = certificates.init_certs(directory, overwrite=force, hosts=hosts)
    except FailedPrecondition as exc:
        raise click.ClickException(f"{exc}; pass --force to replace it") from exc
    for path in written:
        click.echo(str(path))


def _role(value: str) -> str:
    """A usage error (exit 2) saying why, for ucloud too (its role comes from a token)."""
    try:
        certificates.check_role(value)
    except InvalidArgument as exc:
        raise click.BadParameter(str(exc)) from None
    return value


@certs.command()
@_DIR
@click.option("--name", required=True, help="Client name: the certificate's CN and file prefix.")
@click.option(
    "--role",
    required=True,
    metavar="|".join(certificates.ROLES),
    callback=lambda ctx, param, value: _role(value),
    help="admin: every operation on every job; viewer: read-only on every job; "
    "user: runs jobs, sees and acts on its own and its project's. "
    "(ucloud is a token role of the HTTP provider face, not a certificate role.)",
)
@click.option(
    "--project",
    default="",
    metavar="P",
    help="The client's project (certificate O): users of one project see each other's jobs.",
)
@click.option("--force", is_flag=True, help="Replace an existing pair of that name.")
def client(directory: Path, name: str, role: str, project: str, force: bool) -> None:
    """Issue one more client certificate, signed by the CA in --dir.

    \b
    Example:
      jobyard certs client --dir certs --name alice --role user --project physics
      jobyard --cert certs/alice-client-cert.pem --key certs/alice-client-key.pem list
    """
    try:
        written = certificates.issue_client(directory, name, role, project=project, overwrite=force)
    except FailedPrecondition as exc:
        if not certificates.has_ca(directory):
            raise
        raise click.ClickException(f"{exc}; pass --force to replace it") from exc
    for path in written:
        click.echo(str(path))
