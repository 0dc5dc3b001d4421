"""``jobyard monitor [--watch]``: the server host's metrics as tables (rich)."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from jobyard.cli.state import CliState, pass_state
from jobyard.client.monitoring import SystemSample

_GIB = 1024**3


def _bytes(value: float) -> str:
    for unit, size in (("GiB", _GIB), ("MiB", 1024**2), ("KiB", 1024)):
        if abs(value) >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value:.0f} B"


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", expand=False)
    for column in columns:
        table.add_column(column)
    return table


def _overview(sample: SystemSample) -> Table:
    host, cpu, mem = sample["host"], sample["cpu"], sample["memory"]
    table = _table(f"{host['hostname']}  {sample['timestamp']}", "CPU", "MEMORY", "SWAP", "LOAD")
    table.add_row(
        f"{cpu['usagePercent']:.1f}% of {cpu['cores']} cores\n"
        f"user {cpu['userTime']:.1f}%  system {cpu['systemTime']:.1f}%\n"
        f"idle {cpu['idleTime']:.1f}%  iowait {cpu['ioWaitTime']:.1f}%  "
        f"steal {cpu['stealTime']:.1f}%",
        f"{_bytes(mem['usedBytes'])} / {_bytes(mem['totalBytes'])} ({mem['usagePercent']:.1f}%)\n"
        f"available {_bytes(mem['availableBytes'])}\ncached {_bytes(mem['cachedBytes'])}",
        f"{_bytes(mem['swapUsed'])} / {_bytes(mem['swapTotal'])}",
        " ".join(f"{x:.2f}" for x in cpu["loadAverage"]),
    )
    return table


def _disks(sample: SystemSample) -> Table:
    table = _table("Disks", "MOUNT", "DEVICE", "FS", "USED", "SIZE", "USE%", "INODES%")
    for d in sample["disks"]:
        table.add_row(
            d["mountPoint"], d["device"], d["filesystem"], _bytes(d["usedBytes"]),
            _bytes(d["totalBytes"]), f"{d['usagePercent']:.1f}", f"{d['inodesUsagePercent']:.1f}",
        )  # fmt: skip
    io = sample["io"]
    table.caption = f"IO: read {_bytes(io['readRate'])}/s  write {_bytes(io['writeRate'])}/s"
    return table


def _networks(sample: SystemSample) -> Table:
    table = _table("Network", "INTERFACE", "RX/s", "TX/s", "RX", "TX", "ERR", "DROP")
    for n in sample["networks"]:
        table.add_row(
            n["interface"], _bytes(n["receiveRate"]), _bytes(n["transmitRate"]),
            _bytes(n["bytesReceived"]), _bytes(n["bytesSent"]),
            str(n["errorsIn"] + n["errorsOut"]), str(n["dropsIn"] + n["dropsOut"]),
        )  # fmt: skip
    return table


def _processes(sample: SystemSample) -> Table:
    procs = sample["processes"]
    title = (
        f"Top processes by CPU ({procs['totalProcesses']} processes, "
        f"{procs['runningProcesses']} running, {procs['totalThreads']} threads)"
    )
    table = _table(title, "PID", "USER", "CPU%", "MEM%", "RSS", "STATUS", "COMMAND")
    for p in procs["topByCPU"]:
        table.add_row(
            str(p["pid"]), p["user"], f"{p['cpuPercent']:.1f}", f"{p['memoryPercent']:.1f}",
            _bytes(p["memoryBytes"]), p["status"], (p["command"] or p["name"])[:60],
        )  # fmt: skip
    return table


def render(sample: SystemSample) -> Group:
    """Every table of one sample, as ``jobyard monitor`` prints it."""
    return Group(_overview(sample), _disks(sample), _networks(sample), _processes(sample))


@click.command()
@click.option("--watch", "-w", is_flag=True, help="Keep the tables live until Ctrl+C.")
@click.option(
    "--interval",
    type=click.IntRange(1, 3600),
    default=5,
    show_default=True,
    help="Seconds between updates with --watch.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per line).")
@pass_state
def monitor(state: CliState, watch: bool, interval: int, as_json: bool) -> None:
    """Show the server host's CPU, memory, disks, network, IO and top processes.

    \b
    Examples:
      jobyard monitor
      jobyard monitor --watch --interval 2
    """
    client = state.client()
    if not watch:
        _show(client.system_status(), as_json)
        return
    samples = client.system_metrics(interval=interval)
    if as_json:
        for sample in samples:
            click.echo(json.dumps(sample), nl=True)
        return
    with Live(console=Console(), auto_refresh=False) as live:
        for sample in samples:
            live.update(render(sample), refresh=True)


def _show(sample: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(sample, indent=2))
        return
    Console().print(render(sample))


COMMANDS = (monitor,)
