"""Jobs contained as an attacker would try them: another job's files, the data dir, the
host's shared directories, each other's uid.

The data dir lives outside /tmp here (under /var/lib): a private /tmp would hide a leak
of a data dir under /tmp and prove nothing.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jobyard.client import Client
from tests.conftest import root_problem
from tests.integration.conftest import ServerThread

WAIT = 30.0
OUTSIDE_TMP = Path("/var/lib")


def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def output(client: Client, job_id: str) -> str:
    return b"".join(client.logs(job_id)).decode()


def run(client: Client, script: str) -> str:
    """Run ``script`` as a job to its end; its output."""
    job = client.submit("sh", ["-c", script])
    done = client.wait(job.id, timeout=WAIT)
    assert done.status == "COMPLETED", output(client, job.id)
    return output(client, job.id)


def admin_client(thread: ServerThread, certs_dir: Path) -> Client:
    return Client(
        server=f"localhost:{thread.port}",
        cert=str(certs_dir / "admin-client-cert.pem"),
        key=str(certs_dir / "admin-client-key.pem"),
        ca=str(certs_dir / "ca-cert.pem"),
    )


Started = Callable[..., tuple[ServerThread, Client]]


@pytest.fixture
def outside_tmp(certs_dir: Path) -> Iterator[Started]:
    """Start servers whose data dir (and config) live under /var/lib, not /tmp."""
    if root_problem():
        pytest.skip(root_problem() or "")
    base = Path(tempfile.mkdtemp(prefix="jobyard-test-", dir=OUTSIDE_TMP))
    base.chmod(0o755)  # as /var/lib is: only what jobyard does may keep a job out
    started: list[tuple[ServerThread, Client]] = []

    def start(yaml: str = "") -> tuple[ServerThread, Client]:
        config = base / f"config-{len(started)}.yml"
        config.write_text(yaml)
        thread = ServerThread(base / f"data-{len(started)}", certs_dir, config_file=config)
        thread.start()
        client = admin_client(thread, certs_dir)
        started.append((thread, client))
        return thread, client

    yield start
    for thread, client in started:
        client.close()
        thread.close()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def contained(outside_tmp: Started) -> tuple[ServerThread, Client]:
    return outside_tmp()


# -- the data dir ---------------------------------------------------------------------------------


def test_a_job_cannot_read_or_change_another_jobs_files(
    contained: tuple[ServerThread, Client],
) -> None:
    server, admin = contained
    data = server.data_dir.resolve()
    victim = admin.submit("sh", ["-c", "echo secret > result.txt; echo ready; exec sleep 100"])
    eventually(lambda: output(admin, victim.id) == "ready\n", "the victim's file")
    other = data / "jobs" / victim.id
    attack = f"""
        cat {other}/work/result.txt && echo READ-BY-PATH
        echo tampered > {other}/work/result.txt && echo WROTE-BY-PATH
        cat {other}/output.log && echo READ-OUTPUT
        head -c 16 {data}/jobyard.db && echo READ-DATABASE
        for p in /proc/[0-9]*; do
            cat $p/root{other}/work/result.txt 2>/dev/null && echo READ-BY-PROC-ROOT
            ls $p/cwd/.. 2>/dev/null | grep -q jobs && echo CWD-LEADS-OUT
        done
        [ -e {data}/jobs ] && echo SEES-JOBS
        ls -A {data}; echo "listed: $(ls -A {data} | wc -l)"
        pwd
    """
    seen = run(admin, attack)

    for leak in ("secret", "READ-", "WROTE-", "CWD-LEADS-OUT", "SQLite", "SEES-JOBS"):
        assert leak not in seen, seen
    assert "listed: 0\n" in seen  # the data dir is an empty directory to the job
    assert seen.endswith("/work\n")
    download = io.BytesIO()
    admin.download(victim.id, "result.txt", download)
    assert download.getvalue() == b"secret\n"  # untouched, and still served from /work
    admin.stop(victim.id)


SHARED_UID = 299980
SHARED_UID_CONFIG = f"""
jobyard:
  jobUids: {{admin: {SHARED_UID}}}
"""


def test_jobs_of_one_uid_still_cannot_reach_each_other_through_the_data_dir(
    outside_tmp: Started,
) -> None:
    # One owner with a fixed uid: file permissions no longer part two of its jobs, only
    # what each job sees does. And the root is read-only even where the uid owns a dir.
    server, admin = outside_tmp(SHARED_UID_CONFIG)
    data = server.data_dir.resolve()
    owned = data.parent / "owned-by-the-job-uid"
    owned.mkdir()
    os.chown(owned, SHARED_UID, SHARED_UID)
    victim = admin.submit("sh", ["-c", "echo secret > result.txt; echo ready; exec sleep 100"])
    eventually(lambda: output(admin, victim.id) == "ready\n", "the victim's file")
    other = data / "jobs" / victim.id / "work"
    attack = f"""
        id -u
        cat {other}/result.txt && echo READ-BY-PATH
        echo tampered > {other}/result.txt && echo WROTE-BY-PATH
        [ -e {data}/jobs ] && echo SEES-JOBS
        touch {owned}/x && echo WROTE-HOST-DIR
        :
    """
    seen = run(admin, attack)
    admin.stop(victim.id)

    assert seen.startswith(f"{SHARED_UID}\n")  # it ran as the uid that owns them all
    for leak in ("secret", "READ-", "WROTE-", "SEES-JOBS", "Permission denied"):
        assert leak not in seen, seen  # not denied: absent (or read-only)
    assert f"touch: cannot touch '{owned}/x': Read-only file system" in seen
    assert (other / "result.txt").read_text() == "secret\n"
    assert not (owned / "x").exists()


def test_the_host_shared_directories_are_private_and_the_root_read_only(
    contained: tuple[ServerThread, Client],
) -> None:
    _, admin = contained
    mark = f"jobyard-leak-{time.monotonic_ns()}"
    writer = f"""
        for d in /tmp /var/tmp /dev/shm /run; do echo x > $d/{mark} && echo "wrote $d"; done
        mkdir -p /run/lock && echo x > /run/lock/{mark} && echo "wrote /run/lock"
        touch /{mark} /etc/{mark} /usr/{mark} 2>/dev/null || echo "root read-only"
    """
    wrote = run(admin, writer)
    dirs = ("/tmp", "/var/tmp", "/dev/shm", "/run", "/run/lock")
    seen = run(admin, f"for d in {' '.join(dirs)}; do [ -e $d/{mark} ] && echo found $d; done; :")

    for d in dirs:
        assert f"wrote {d}\n" in wrote  # writable inside the job...
        assert not Path(d, mark).exists()  # ...and nothing of it reached the host
    assert seen == ""  # nor the next job
    assert "root read-only" in wrote
    assert not Path("/", mark).exists()


def test_no_other_directory_is_writable_for_a_job(contained: tuple[ServerThread, Client]) -> None:
    _, admin = contained
    # Every directory the job may write to (access(2) as the job user), outside its own
    # /work, the private file systems and the kernel's virtual ones.
    finder = (
        "find / \\( -path /proc -o -path /sys -o -path /work -o -path /tmp -o -path /var/tmp"
        " -o -path /dev/shm -o -path /dev/mqueue -o -path /run \\) -prune"
        " -o -type d -writable -print 2>/dev/null;"
        " for d in /work /tmp /var/tmp /dev/shm /run; do [ -w $d ] && echo ok $d; done"
    )
    seen = run(admin, finder).split("\n")
    assert [line for line in seen if line and not line.startswith("ok ")] == []
    assert [line for line in seen if line.startswith("ok ")] == [
        "ok /work", "ok /tmp", "ok /var/tmp", "ok /dev/shm", "ok /run",
    ]  # fmt: skip


def test_replica_files_are_at_run_jobyard_and_etc_ucloud(
    contained: tuple[ServerThread, Client],
) -> None:
    _, admin = contained
    seen = run(admin, "cat /run/jobyard/rank.txt /etc/ucloud/rank.txt /etc/ucloud/job_id.txt")
    assert seen.split() == ["0", "0", seen.split()[2]] and len(seen.split()[2]) == 36


# -- uids -----------------------------------------------------------------------------------


def test_two_concurrent_jobs_run_as_different_uids(contained: tuple[ServerThread, Client]) -> None:
    _, admin = contained
    jobs = [admin.submit("sh", ["-c", "id -u; exec sleep 100"]) for _ in range(2)]
    for job in jobs:
        eventually(lambda job=job: output(admin, job.id).endswith("\n"), "the job's uid")
    uids = [int(output(admin, job.id)) for job in jobs]
    for job in jobs:
        admin.stop(job.id)
    assert uids[0] != uids[1]
    assert all(200000 <= uid <= 265535 for uid in uids)


UID_PAIR = (299990, 299991)
PAIR_CONFIG = f"""
joblet:
  maxConcurrentJobs: 2
jobyard:
  jobUidRange: "{UID_PAIR[0]}-{UID_PAIR[1]}"
"""


def test_an_adopted_job_keeps_its_uid_across_a_server_restart(
    outside_tmp: Started, certs_dir: Path
) -> None:
    server, before = outside_tmp(PAIR_CONFIG)
    first = before.submit("sh", ["-c", "id -u; exec sleep 100"])
    eventually(lambda: output(before, first.id).endswith("\n"), "the first job's uid")
    server.stop()
    server.start()
    with admin_client(server, certs_dir) as admin:
        second = admin.submit("sh", ["-c", "id -u; exec sleep 100"])
        eventually(lambda: output(admin, second.id).endswith("\n"), "the second job's uid")
        uids = [int(output(admin, first.id)), int(output(admin, second.id))]
        admin.stop(first.id)
        third = admin.submit("id", ["-u"])  # the first's uid is free again
        done = admin.wait(third.id, timeout=WAIT)
        admin.stop(second.id)

        assert sorted(uids) == list(UID_PAIR)  # the adopted job's uid was not handed out
        assert done.status == "COMPLETED"
        assert int(output(admin, third.id)) in UID_PAIR
