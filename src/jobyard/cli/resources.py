"""``jobyard volume|network|runtime ...``: Joblet's named resources."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

import click

from jobyard.cli.state import CliState, pass_state

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )


@click.group()
def volume() -> None:
    """Volumes: storage of a fixed size that jobs naming it share at /volumes/NAME.

    \b
    Examples:
      jobyard volume create data --size 1GB
      jobyard volume create scratch --size 256MB --type memory
      jobyard run --volume data sh -c 'date >> /volumes/data/log'
      jobyard volume list
      jobyard volume remove data
    """


@volume.command("create")
@click.argument("name")
@click.option("--size", required=True, help="Size, e.g. 500MB or 1GB.")
@click.option(
    "--type", "kind", type=click.Choice(["filesystem", "memory"]), default="filesystem",
    show_default=True, help="filesystem: an ext4 image on disk; memory: a tmpfs.",
)  # fmt: skip
@_JSON
@pass_state
def volume_create(state: CliState, name: str, size: str, kind: str, as_json: bool) -> None:
    """Create volume NAME."""
    info = state.client().create_volume(name, size, kind)
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(info), indent=2))
        return
    click.echo(f"Volume created:\nName: {info.name}\nSize: {info.size}\nType: {info.type}\n"
               f"Path: {info.path}")  # fmt: skip


@volume.command("list")
@_JSON
@pass_state
def volume_list(state: CliState, as_json: bool) -> None:
    """The volumes you may use."""
    volumes = state.client().volumes()
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(v) for v in volumes], indent=2))
    elif not volumes:
        click.echo("No volumes")
    else:
        rows = [(v.name, v.size, v.type, str(v.job_count), v.owner, v.created_time)
                for v in volumes]  # fmt: skip
        click.echo(_table(rows, ("NAME", "SIZE", "TYPE", "JOBS", "OWNER", "CREATED")))


@volume.command("remove")
@click.argument("name")
@pass_state
def volume_remove(state: CliState, name: str) -> None:
    """Remove volume NAME and everything in it (refused while unfinished jobs name it)."""
    click.echo(state.client().remove_volume(name))


@click.group()
def network() -> None:
    """Networks: jobs on the same one reach each other by address, and nothing else.

    \b
    Examples:
      jobyard network create backend --cidr 10.10.0.0/24
      jobyard run --network backend python3 -m http.server 8000
      jobyard network list
      jobyard network remove backend
    """


@network.command("create")
@click.argument("name")
@click.option("--cidr", required=True, help="A private IPv4 range, /16 to /29.")
@_JSON
@pass_state
def network_create(state: CliState, name: str, cidr: str, as_json: bool) -> None:
    """Create network NAME."""
    info = state.client().create_network(name, cidr)
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(info), indent=2))
        return
    click.echo(f"Network created:\nName: {info.name}\nCIDR: {info.cidr}\nBridge: {info.bridge}")


@network.command("list")
@_JSON
@pass_state
def network_list(state: CliState, as_json: bool) -> None:
    """The networks you may use."""
    networks = state.client().networks()
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(n) for n in networks], indent=2))
    elif not networks:
        click.echo("No networks")
    else:
        rows = [(n.name, n.cidr, n.bridge, str(n.job_count), n.owner) for n in networks]
        click.echo(_table(rows, ("NAME", "CIDR", "BRIDGE", "JOBS", "OWNER")))


@network.command("remove")
@click.argument("name")
@pass_state
def network_remove(state: CliState, name: str) -> None:
    """Remove network NAME (refused while unfinished jobs are on it)."""
    click.echo(state.client().remove_network(name))


@click.group()
def runtime() -> None:
    """Runtimes: trees of programs (bin/ first on PATH) that jobs get read-only at /runtime.

    \b
    Examples:
      jobyard runtime install python-3.11-ml /opt/runtimes/python-3.11-ml
      jobyard run --runtime python-3.11-ml python3 -c 'import numpy'
      jobyard runtime list
      jobyard runtime test python-3.11-ml
    """


@runtime.command("install")
@click.argument("name")
@click.argument("path")
@click.option("--force", is_flag=True, help="Replace an installed runtime of that name.")
@pass_state
def runtime_install(state: CliState, name: str, path: str, force: bool) -> None:
    """Install the directory PATH on the server as runtime NAME (admin)."""
    click.echo(state.client().install_runtime(name, path, force=force))


@runtime.command("list")
@_JSON
@pass_state
def runtime_list(state: CliState, as_json: bool) -> None:
    """The installed runtimes."""
    runtimes = state.client().runtimes()
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(r) for r in runtimes], indent=2))
    elif not runtimes:
        click.echo("No runtimes")
    else:
        rows = [(r.name, r.language, r.version, str(r.size_bytes), r.description)
                for r in runtimes]  # fmt: skip
        click.echo(_table(rows, ("NAME", "LANGUAGE", "VERSION", "SIZE", "DESCRIPTION")))


@runtime.command("info")
@click.argument("name")
@_JSON
@pass_state
def runtime_info(state: CliState, name: str, as_json: bool) -> None:
    """What runtime NAME is."""
    info = state.client().runtime(name)
    if info is None:
        raise click.ClickException(f"runtime not found: {name}")
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(info), indent=2))
        return
    click.echo(f"Runtime: {info.name}\nLanguage: {info.language}\nVersion: {info.version}\n"
               f"Description: {info.description}\nSize: {info.size_bytes} bytes\n"
               f"Packages: {', '.join(info.packages) or '-'}")  # fmt: skip


@runtime.command("test")
@click.argument("name")
@pass_state
def runtime_test(state: CliState, name: str) -> None:
    """Run runtime NAME's test (admin); exits non-zero when it fails."""
    result = state.client().test_runtime(name)
    click.echo(result.output, nl=not result.output.endswith("\n"))
    if not result.success:
        raise click.ClickException(result.error)
    click.echo(f"Runtime {name}: test passed")


@runtime.command("remove")
@click.argument("name")
@pass_state
def runtime_remove(state: CliState, name: str) -> None:
    """Remove runtime NAME (admin; refused while unfinished jobs use it)."""
    freed = state.client().remove_runtime(name)
    click.echo(f"Runtime {name} removed ({freed} bytes freed)")


COMMANDS = (volume, network, runtime)
