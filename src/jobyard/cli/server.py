"""``jobyard server``: run the daemon in the foreground."""

from __future__ import annotations

from pathlib import Path

import click

from jobyard import certs as certificates
from jobyard.config import BACKENDS, load_config
from jobyard.domain.errors import JobyardError

DEFAULT_LISTEN = "127.0.0.1:50051"
SERVER_FILES = (certificates.CA_CERT, certificates.SERVER_CERT, certificates.SERVER_KEY)


@click.command()
@click.option(
    "--listen",
    default=DEFAULT_LISTEN,
    show_default=True,
    metavar="HOST:PORT",
    help="Address to serve gRPC on.",
)
@click.option(
    "--http-listen",
    metavar="HOST:PORT",
    help="Also serve the HTTPS face (UCloud Jobs API, bearer tokens) here, e.g. 127.0.0.1:8443.",
)
@click.option(
    "--certs",
    "certs_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory with ca-cert.pem, server-cert.pem, server-key.pem.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default="./data",
    show_default=True,
    help="Where jobs, their output and the database are kept.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML config (the seed's joblet-config.yml keys).",
)
@click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    help="Where jobs that name no backend run (config jobyard.backend; default local).",
)
@click.option(
    "--insecure-dev",
    is_flag=True,
    help="Serve without TLS when no --certs is given. Development only: anyone can connect.",
)
def server(
    listen: str,
    http_listen: str | None,
    certs_dir: Path | None,
    data_dir: Path,
    config_file: Path | None,
    backend: str | None,
    insecure_dev: bool,
) -> None:
    """Run the jobyard server in the foreground until interrupted.

    \b
    Example:
      jobyard certs init --dir certs
      jobyard server --listen 127.0.0.1:50051 --certs certs --data-dir ./data
      jobyard server --certs certs --backend slurm --config slurm.yml
      jobyard server --certs certs --http-listen 127.0.0.1:8443   # and the HTTPS face
    """
    _check_listen(listen)
    if http_listen is not None:
        _check_listen(http_listen, "--http-listen")
    if certs_dir is None and not insecure_dev:
        raise click.UsageError(
            "refusing to start without TLS: pass --certs DIR "
            "(create one with `jobyard certs init --dir certs`), "
            "or --insecure-dev for a development server anyone can use"
        )
    if certs_dir is not None:
        _check_certs(certs_dir)
    # Absolute paths: the daemon and its jobs must not depend on the directory it started in.
    config = load_config(
        config_file,
        data_dir=data_dir.resolve(),
        listen=listen,
        http_listen=http_listen,
        certs_dir=None if certs_dir is None else certs_dir.resolve(),
        insecure_dev=insecure_dev,
        backend=backend,
    )
    # Imported here: the server pulls in the runtime, store and engine, which the client
    # side of this binary never needs.
    from jobyard.server.app import serve

    try:
        serve(config)
    except JobyardError as e:  # a refusal to start (port taken, bad key file): no traceback
        raise click.ClickException(str(e)) from None


def _check_listen(listen: str, option: str = "--listen") -> None:
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise click.BadParameter(
            f"{listen!r} is not HOST:PORT (e.g. 127.0.0.1:50051)", param_hint=option
        )


def _check_certs(certs_dir: Path) -> None:
    missing = [name for name in SERVER_FILES if not (certs_dir / name).is_file()]
    if missing:
        raise click.BadParameter(
            f"{certs_dir} lacks {', '.join(missing)} "
            f"(create them with `jobyard certs init --dir {certs_dir}`)",
            param_hint="--certs",
        )
