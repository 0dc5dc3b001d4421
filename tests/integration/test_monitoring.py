"""joblet.MonitoringService through the SDK and the CLI against a real server."""

from __future__ import annotations

import functools
import itertools
import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from jobyard.certs import issue_client
from jobyard.cli.main import cli
from jobyard.client import Client
from jobyard.domain.errors import InvalidArgument, PermissionDenied
from jobyard.monitoring import MAX_INTERFACES, TOP_PROCESSES
from tests.e2e.daemon import jobyard_argv
from tests.integration.conftest import ClientFactory, ServerThread


def _meminfo_total() -> int:
    text = Path("/proc/meminfo").read_text()
    match = re.search(r"^MemTotal:\s+(\d+) kB", text, re.M)
    assert match
    return int(match.group(1)) * 1024


@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_system_status_describes_this_host(client_for: ClientFactory, role: str) -> None:
    status = client_for(role).system_status()

    assert status["available"] is True
    assert status["host"]["hostname"] == os.uname().nodename
    assert status["host"]["cpuCount"] == status["cpu"]["cores"] == os.cpu_count()
    assert status["memory"]["totalBytes"] == _meminfo_total()
    cpu = status["cpu"]
    assert 0 <= cpu["usagePercent"] <= 100 and len(cpu["perCoreUsage"]) == os.cpu_count()
    shares = cpu["userTime"] + cpu["systemTime"] + cpu["idleTime"] + cpu["ioWaitTime"]
    assert shares + cpu["stealTime"] == pytest.approx(100, abs=1.5)
    assert len(cpu["loadAverage"]) == 3
    networks = {n["interface"]: n for n in status["networks"]}
    assert "lo" in networks and len(networks) <= MAX_INTERFACES
    for disk in status["disks"]:
        assert disk["usedBytes"] <= disk["totalBytes"]
    procs = status["processes"]
    assert procs["totalProcesses"] >= len(procs["topByCPU"]) > 0
    assert len(procs["topByCPU"]) <= TOP_PROCESSES and len(procs["topByMemory"]) <= TOP_PROCESSES
    rss = [p["memoryBytes"] for p in procs["topByMemory"]]
    assert rss == sorted(rss, reverse=True)


def test_metrics_stream_one_sample_per_interval(admin: Client) -> None:
    samples = list(itertools.islice(admin.system_metrics(interval=1, types=["cpu", "memory"]), 2))

    assert [sorted(s) for s in samples] == [
        ["cloud", "cpu", "disks", "host", "io", "memory", "networks", "processes", "timestamp"]
    ] * 2
    assert samples[0]["timestamp"] < samples[1]["timestamp"]
    assert samples[1]["memory"]["totalBytes"] == _meminfo_total()
    assert samples[1]["disks"] == [] and samples[1]["processes"]["totalProcesses"] == 0


@pytest.mark.parametrize(
    ("interval", "types", "message"),
    [(0, ["gpu"], "invalid metricTypes gpu"), (3601, [], "invalid intervalSeconds 3601")],
)
def test_bad_stream_requests_are_refused(
    admin: Client, interval: int, types: list[str], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        next(admin.system_metrics(interval=interval, types=types))


def test_users_may_not_monitor_the_host(client_for: ClientFactory, certs_dir: Path) -> None:
    issue_client(certs_dir, "mona", "user", overwrite=True)
    with pytest.raises(PermissionDenied, match="role user is not allowed to perform operation"):
        client_for("mona").system_status()


def _global_options(server: ServerThread, certs_dir: Path) -> list[str]:
    return [
        f"--server=localhost:{server.port}",
        f"--cert={certs_dir / 'viewer-client-cert.pem'}",
        f"--key={certs_dir / 'viewer-client-key.pem'}",
        f"--ca={certs_dir / 'ca-cert.pem'}",
    ]


def test_monitor_prints_the_tables(server: ServerThread, certs_dir: Path) -> None:
    result = CliRunner().invoke(cli, [*_global_options(server, certs_dir), "monitor"])

    assert result.exit_code == 0, result.output
    for heading in ("CPU", "MEMORY", "Disks", "Network", "Top processes by CPU", "lo"):
        assert heading in result.output
    assert os.uname().nodename in result.output


def test_monitor_watch_keeps_printing_until_interrupted(
    server: ServerThread, certs_dir: Path
) -> None:
    argv = [*jobyard_argv(), *_global_options(server, certs_dir)]
    argv += ["monitor", "--watch", "--json", "--interval", "1"]
    # A shell without job control starts background commands with SIGINT ignored, and
    # Python keeps an inherited SIG_IGN: give the CLI the disposition a terminal gives it.
    interactive = functools.partial(signal.signal, signal.SIGINT, signal.SIG_DFL)
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, preexec_fn=interactive) as proc:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(2)]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 130
    first, second = (json.loads(line) for line in lines)
    assert first["timestamp"] < second["timestamp"]
    assert second["cpu"]["cores"] == os.cpu_count()
