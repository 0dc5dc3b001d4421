"""Host metrics for Joblet's MonitoringService: CPU, memory, disks, network, IO, processes.

A :class:`HostSampler` reads the host (through psutil, which reads /proc and /sys) and keeps
the previous counters, so that each sample carries rates over the time since the one before
it. Samples are plain dicts keyed by the wire's field names (Joblet's monitoring messages),
which the server hands to the protobuf constructors unchanged.
"""

from __future__ import annotations

import os
import platform
import socket
import time
from datetime import UTC, datetime
from typing import Any

import psutil

from jobyard.domain.jobs import rfc3339

MAX_INTERFACES = 10  # the seed: "limited to 10 active interfaces"
TOP_PROCESSES = 10  # the seed: "top 10 processes by CPU usage"
MAX_COMMAND_CHARS = 256
METRIC_TYPES = frozenset({"cpu", "memory", "disk", "network", "io", "process"})
_VIRTUAL_FS = frozenset({"squashfs", "overlay", "tmpfs", "devtmpfs", "nsfs", "proc"})

Sample = dict[str, Any]


class HostSampler:
    """Samples the host; rates and CPU percentages cover the time since the previous call."""

    def __init__(self) -> None:
        self._at = time.monotonic()
        self._net = psutil.net_io_counters(pernic=True)
        self._disk = psutil.disk_io_counters(perdisk=True) or {}
        self._cpu = psutil.cpu_times()
        psutil.cpu_percent(percpu=True)  # primes the per-core figures
        self._procs: dict[int, psutil.Process] = {}
        self._top_processes()  # primes each process's CPU percentage

    def sample(self, types: frozenset[str] = METRIC_TYPES) -> Sample:
        now = time.monotonic()
        elapsed = max(now - self._at, 1e-3)
        self._at = now
        out: Sample = {"timestamp": rfc3339(datetime.now(UTC)), "host": host_info()}
        if "cpu" in types:
            out["cpu"] = self._cpu_metrics()
        if "memory" in types:
            out["memory"] = memory_metrics()
        if "disk" in types:
            out["disks"] = disk_metrics()
        if "network" in types:
            out["networks"] = self._network_metrics(elapsed)
        if "io" in types:
            out["io"] = self._io_metrics(elapsed)
        if "process" in types:
            out["processes"] = self._top_processes()
        return out

    def _cpu_metrics(self) -> Sample:
        times = psutil.cpu_times()
        deltas = {f: getattr(times, f, 0.0) - getattr(self._cpu, f, 0.0) for f in times._fields}
        self._cpu = times
        total = sum(deltas.values()) or 1.0

        def share(field: str) -> float:
            return round(100.0 * max(deltas.get(field, 0.0), 0.0) / total, 2)

        idle = share("idle") + share("iowait")
        return {
            "cores": psutil.cpu_count() or 1,
            "usagePercent": round(100.0 - idle, 2),
            "userTime": share("user") + share("nice"),
            "systemTime": share("system") + share("irq") + share("softirq"),
            "idleTime": share("idle"),
            "ioWaitTime": share("iowait"),
            "stealTime": share("steal"),
            "loadAverage": list(os.getloadavg()),
            "perCoreUsage": psutil.cpu_percent(percpu=True),
        }

    def _network_metrics(self, elapsed: float) -> list[Sample]:
        counters = psutil.net_io_counters(pernic=True)
        stats = psutil.net_if_stats()
        before, self._net = self._net, counters
        rows: list[Sample] = []
        for name, now in counters.items():
            if not (stats.get(name) and stats[name].isup) and not (now.bytes_recv + now.bytes_sent):
                continue  # only active interfaces
            prev = before.get(name, now)
            rows.append({
                "interface": name, "bytesReceived": now.bytes_recv, "bytesSent": now.bytes_sent,
                "packetsReceived": now.packets_recv, "packetsSent": now.packets_sent,
                "errorsIn": now.errin, "errorsOut": now.errout,
                "dropsIn": now.dropin, "dropsOut": now.dropout,
                "receiveRate": max(now.bytes_recv - prev.bytes_recv, 0) / elapsed,
                "transmitRate": max(now.bytes_sent - prev.bytes_sent, 0) / elapsed,
            })  # fmt: skip
        rows.sort(key=lambda r: -(r["bytesReceived"] + r["bytesSent"]))
        return rows[:MAX_INTERFACES]

    def _io_metrics(self, elapsed: float) -> Sample:
        counters = psutil.disk_io_counters(perdisk=True) or {}
        before, self._disk = self._disk, counters
        disks, rates = [], [0.0, 0.0]
        for name, now in sorted(counters.items()):
            prev = before.get(name, now)
            busy = getattr(now, "busy_time", 0) - getattr(prev, "busy_time", 0)
            disks.append({
                "device": name, "readsCompleted": now.read_count,
                "writesCompleted": now.write_count, "readBytes": now.read_bytes,
                "writeBytes": now.write_bytes, "readTime": now.read_time,
                "writeTime": now.write_time, "ioTime": getattr(now, "busy_time", 0),
                "utilization": min(100.0, max(busy, 0) / (elapsed * 10.0)),  # ms / (s * 1000) %
            })  # fmt: skip
            rates[0] += max(now.read_bytes - prev.read_bytes, 0) / elapsed
            rates[1] += max(now.write_bytes - prev.write_bytes, 0) / elapsed
        return {
            "totalReads": sum(d["readsCompleted"] for d in disks),
            "totalWrites": sum(d["writesCompleted"] for d in disks),
            "readBytes": sum(d["readBytes"] for d in disks),
            "writeBytes": sum(d["writeBytes"] for d in disks),
            "readRate": rates[0],
            "writeRate": rates[1],
            "diskIO": disks,
        }

    def _top_processes(self) -> Sample:
        seen: dict[int, psutil.Process] = {}
        rows, statuses, threads = (
            [],
            dict.fromkeys(("running", "sleeping", "stopped", "zombie"), 0),
            0,
        )
        for pid in psutil.pids():
            proc = self._procs.get(pid) or _process(pid)
            if proc is None:
                continue
            try:
                with proc.oneshot():
                    row = _process_row(proc)
                    threads += proc.num_threads()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            seen[pid] = proc
            status = row["status"]
            statuses[status] = statuses.get(status, 0) + 1
            rows.append(row)
        self._procs = seen
        return {
            "totalProcesses": len(rows),
            "runningProcesses": statuses["running"],
            "sleepingProcesses": statuses["sleeping"] + statuses.get("idle", 0),
            "stoppedProcesses": statuses["stopped"],
            "zombieProcesses": statuses["zombie"],
            "totalThreads": threads,
            "topByCPU": sorted(rows, key=lambda r: -r["cpuPercent"])[:TOP_PROCESSES],
            "topByMemory": sorted(rows, key=lambda r: -r["memoryBytes"])[:TOP_PROCESSES],
        }


def _process(pid: int) -> psutil.Process | None:
    try:
        proc = psutil.Process(pid)
        proc.cpu_percent()  # the first call only starts the measurement
        return proc
    except psutil.Error:
        return None


def _process_row(proc: psutil.Process) -> Sample:
    memory = proc.memory_info().rss
    started = datetime.fromtimestamp(proc.create_time(), UTC)
    try:
        user = proc.username()
    except KeyError:  # a uid with no passwd entry
        user = str(proc.uids().real)
    return {
        "pid": proc.pid,
        "ppid": proc.ppid(),
        "name": proc.name(),
        "command": " ".join(proc.cmdline())[:MAX_COMMAND_CHARS],
        "cpuPercent": proc.cpu_percent(),
        "memoryPercent": round(100.0 * memory / psutil.virtual_memory().total, 2),
        "memoryBytes": memory,
        "status": proc.status(),
        "startTime": rfc3339(started),
        "user": user,
    }


def host_info() -> Sample:
    uname = platform.uname()
    boot = psutil.boot_time()
    release = (
        platform.freedesktop_os_release() if hasattr(platform, "freedesktop_os_release") else {}
    )
    return {
        "hostname": socket.gethostname(),
        "os": uname.system.lower(),
        "platform": release.get("ID", ""),
        "platformFamily": release.get("ID_LIKE", release.get("ID", "")),
        "platformVersion": release.get("VERSION_ID", ""),
        "kernelVersion": uname.release,
        "kernelArch": uname.machine,
        "architecture": uname.machine,
        "cpuCount": psutil.cpu_count() or 1,
        "totalMemory": psutil.virtual_memory().total,
        "bootTime": rfc3339(datetime.fromtimestamp(boot, UTC)),
        "uptime": int(time.time() - boot),
    }


def memory_metrics() -> Sample:
    mem, swap = psutil.virtual_memory(), psutil.swap_memory()
    return {
        "totalBytes": mem.total, "usedBytes": mem.used, "freeBytes": mem.free,
        "availableBytes": mem.available, "usagePercent": mem.percent,
        "cachedBytes": getattr(mem, "cached", 0), "bufferedBytes": getattr(mem, "buffers", 0),
        "swapTotal": swap.total, "swapUsed": swap.used, "swapFree": swap.free,
    }  # fmt: skip


def disk_metrics() -> list[Sample]:
    rows = []
    for part in psutil.disk_partitions(all=False):
        if part.fstype in _VIRTUAL_FS:
            continue
        try:
            usage, vfs = psutil.disk_usage(part.mountpoint), os.statvfs(part.mountpoint)
        except OSError:
            continue
        inodes_used = vfs.f_files - vfs.f_ffree
        inodes_pct = round(100.0 * inodes_used / vfs.f_files, 2) if vfs.f_files else 0.0
        rows.append({
            "device": part.device, "mountPoint": part.mountpoint, "filesystem": part.fstype,
            "totalBytes": usage.total, "usedBytes": usage.used, "freeBytes": usage.free,
            "usagePercent": usage.percent, "inodesTotal": vfs.f_files,
            "inodesUsed": inodes_used, "inodesFree": vfs.f_ffree,
            "inodesUsagePercent": inodes_pct,
        })  # fmt: skip
    return rows
