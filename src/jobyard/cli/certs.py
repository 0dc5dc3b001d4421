"""``jobyard certs``: make the CA, server and client certificates for mutual TLS."""

from __future__ import annotations

from pathlib import Path

import click

from jobyard import certs as certificates
from jobyard.domain.errors import FailedPrecondition

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
      jobyard certs client --dir certs --name alice --role viewer
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


@certs.command()
@_DIR
@click.option("--name", required=True, help="Client name: the certificate's CN and file prefix.")
@click.option(
    "--role",
    required=True,
    type=click.Choice(certificates.ROLES),
    help="admin: every operation; viewer: read-only.",
)
@click.option("--force", is_flag=True, help="Replace an existing pair of that name.")
def client(directory: Path, name: str, role: str, force: bool) -> None:
    """Issue one more client certificate, signed by the CA in --dir.

    \b
    Example:
      jobyard certs client --dir certs --name alice --role viewer
      jobyard --cert certs/alice-client-cert.pem --key certs/alice-client-key.pem list
    """
    try:
        written = certificates.issue_client(directory, name, role, overwrite=force)
    except FailedPrecondition as exc:
        if not certificates.has_ca(directory):
            raise
        raise click.ClickException(f"{exc}; pass --force to replace it") from exc
    for path in written:
        click.echo(str(path))
