"""The lifecycle commands as a user runs them: run --time/--schedule/--label, extend, wait,
list filters and views, delete, files, download; secrets never printed nor logged."""

from __future__ import annotations

import hashlib
import json
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import root_problem
from tests.e2e.daemon import Daemon, jobyard_argv

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(root_problem() is not None, reason=root_problem() or ""),
]

SECRET = "sekret-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    root = tmp_path_factory.mktemp("lifecycle")
    (root / "config.yml").write_text("joblet:\n  jobTimeout: 1h\n")
    d = Daemon(root)
    d.start("--config", "config.yml")
    yield d
    d.stop()


def lines_of(text: str) -> dict[str, str]:
    """``Key: value`` lines of a status block."""
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


def ok(daemon: Daemon, *args: str) -> str:
    result = daemon.run(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_time_limit_stops_the_job_and_status_shows_why(daemon: Daemon) -> None:
    job_id = daemon.submit("--time", "1s", "sleep", "60")

    waited = daemon.wait(job_id)
    status = ok(daemon, "status", job_id)

    assert (waited["status"], waited["terminationReason"]) == ("STOPPED", "TIME_LIMIT")
    fields = lines_of(status)
    assert fields["Status"] == "STOPPED"
    assert fields["Reason"] == "TIME_LIMIT"
    assert fields["TimeLimit"] == "1s"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z", fields["ExpiresAt"])
    assert "STOPPED stopped: time limit reached" in status


def test_the_server_job_timeout_is_the_default_limit(daemon: Daemon) -> None:
    job_id = daemon.submit("sleep", "60")
    assert lines_of(ok(daemon, "status", job_id))["TimeLimit"] == "1h"
    ok(daemon, "stop", job_id)


def test_extend_adds_time_and_refuses_a_finished_job(daemon: Daemon) -> None:
    job_id = daemon.submit("--time", "1m", "sleep", "60")

    out = ok(daemon, "extend", job_id, "30m")

    assert lines_of(out)["TimeLimit"] == "31m"
    assert "time limit extended by 30m" in ok(daemon, "status", job_id)
    ok(daemon, "stop", job_id)
    refused = daemon.run("extend", job_id, "30m")
    assert refused.returncode == 1
    assert f"job is not running: {job_id} (current status: STOPPED)" in refused.stderr
    bad = daemon.run("extend", job_id, "soon")
    assert bad.returncode == 2 and "invalid duration 'soon'" in bad.stderr


def test_a_scheduled_job_shows_scheduled_then_runs(daemon: Daemon) -> None:
    job_id = daemon.submit("--schedule", "+2s", "true")
    status = lines_of(ok(daemon, "status", job_id))
    assert status["Status"] == "SCHEDULED"
    assert status["ScheduledTime"].endswith("Z")
    assert daemon.wait(job_id)["status"] == "COMPLETED"
    bad = daemon.run("run", "--schedule", "next tuesday", "true")
    assert bad.returncode == 2 and "neither an RFC 3339 time nor a duration" in bad.stderr


def test_wait_gives_up_at_its_timeout(daemon: Daemon) -> None:
    job_id = daemon.submit("sleep", "60")
    result = daemon.run("wait", "--timeout", "0.5", job_id)
    assert result.returncode == 1
    assert f"job {job_id} did not end within 0.5 s" in result.stderr
    ok(daemon, "stop", job_id)


def test_list_filters_pages_and_views(daemon: Daemon) -> None:
    tag = uuid.uuid4().hex[:8]
    first = daemon.submit("--label", f"run={tag}", "--name", "one", "true")
    second = daemon.submit("--label", f"run={tag}", "--name", "two", "true")
    for job_id in (first, second):
        daemon.wait(job_id)

    lines = ok(daemon, "list", "--label", f"run={tag}").splitlines()
    assert [line.split()[0] for line in lines] == [second, first]  # newest first
    assert lines[0].startswith(f"{second} COMPLETED StartTime: ")

    page = daemon.run("list", "--label", f"run={tag}", "--limit", "1", "--json")
    assert [j["id"] for j in json.loads(page.stdout)] == [second]
    token = re.search(r"--page-token (\S+)", page.stderr)
    assert token, page.stderr
    rest = ok(daemon, "list", "--label", f"run={tag}", "--limit", "1",
              "--page-token", token[1], "--json")  # fmt: skip
    assert [j["id"] for j in json.loads(rest)] == [first]

    table = ok(daemon, "list", "--label", f"run={tag}", "--name", "one", "--table")
    header, row = table.splitlines()
    assert header.split()[:3] == ["ID", "NAME", "STATUS"]
    assert row.split()[:3] == [first, "one", "COMPLETED"]
    assert ok(daemon, "list", "--status", "FAILED,STOPPED", "--label", f"run={tag}") == "No jobs\n"
    bad = daemon.run("list", "--status", "DONE")
    assert bad.returncode == 1 and "invalid status 'DONE'" in bad.stderr


def test_delete_removes_a_finished_job(daemon: Daemon) -> None:
    running = daemon.submit("sleep", "60")
    refused = daemon.run("delete", running)
    assert refused.returncode == 1 and "job is not finished" in refused.stderr
    ok(daemon, "stop", running)

    assert ok(daemon, "delete", running[:8]) == f"Job deleted: {running}\n"
    assert not (daemon.root / "data" / "jobs" / running).exists()
    gone = daemon.run("status", running)
    assert gone.returncode == 1 and f"job not found: {running}" in gone.stderr


def test_files_and_download(daemon: Daemon, tmp_path: Path) -> None:
    job_id = daemon.submit(
        "sh", "-c", "mkdir -p out && seq 1 100000 > out/numbers.txt && ln -s /etc/shadow s"
    )
    daemon.wait(job_id)
    numbers = "".join(f"{i}\n" for i in range(1, 100001)).encode()

    header, row = ok(daemon, "files", job_id).splitlines()
    assert header.split() == ["PATH", "SIZE", "SHA256"]
    assert row.split() == [
        "out/numbers.txt",
        str(len(numbers)),
        hashlib.sha256(numbers).hexdigest(),
    ]

    dest = tmp_path / "n.txt"
    out = ok(daemon, "download", job_id, "out/numbers.txt", "-o", str(dest))
    assert dest.read_bytes() == numbers
    assert out.strip() == f"Downloaded out/numbers.txt ({len(numbers)} bytes) to {dest}"
    piped = daemon.run_bytes("download", job_id, "out/numbers.txt", "-o", "-")
    assert piped.returncode == 0 and piped.stdout == numbers

    for path, message in [("s", "symbolic links are not followed"),
                          ("../output.log", "must not contain '..'"),
                          ("/etc/passwd", "must be relative")]:  # fmt: skip
        refused = daemon.run("download", job_id, path, "-o", str(tmp_path / "x"))
        assert refused.returncode == 1 and message in refused.stderr, refused.stderr
        assert not (tmp_path / "x").exists()


def test_a_secret_is_never_printed_nor_logged(daemon: Daemon) -> None:
    digest = hashlib.sha256(SECRET.encode()).hexdigest()
    check = f'[ "$(printf %s "$TOKEN" | sha256sum | cut -d" " -f1)" = {digest} ] && echo match'
    started = daemon.run("run", "--secret-env", f"TOKEN={SECRET}", "--name", "secretive",
                         "sh", "-c", check)  # fmt: skip
    assert started.returncode == 0, started.stderr
    job_id = re.search(r"ID: (\S+)", started.stdout)[1]  # type: ignore[index]
    waited = daemon.run("wait", "--json", job_id)
    assert json.loads(waited.stdout)["status"] == "COMPLETED"
    assert ok(daemon, "log", job_id) == "match\n"

    outputs = [started, waited] + [
        daemon.run(*args)
        for args in (
            ("status", job_id), ("status", "--json", job_id), ("list",), ("list", "--json"),
            ("list", "--name", "secretive", "--table"), ("files", job_id),
        )
    ]  # fmt: skip
    for result in outputs:
        assert result.returncode == 0, result.stderr
        assert SECRET not in result.stdout + result.stderr, result.args
    assert "TOKEN=********" in outputs[2].stdout
    assert SECRET not in daemon.log()
    assert job_id in daemon.log()  # the log does talk about the job


def test_wait_outlives_a_daemon_restart(tmp_path: Path) -> None:
    own = Daemon(tmp_path)
    own.start()
    try:
        job_id = own.submit("sh", "-c", "sleep 3; exit 4")
        waiting = subprocess.Popen(
            [*jobyard_argv(), "wait", "--json", "--timeout", "60", job_id],
            env=own.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert waiting.stderr is not None
        # The CLI says so once the server is watching the job for it.
        assert waiting.stderr.readline().startswith(f"Waiting for job {job_id}: ")
        assert own.process is not None
        own.process.send_signal(signal.SIGTERM)
        own.process.wait(10)
        own.process = None
        time.sleep(1)
        own.start()
        out, err = waiting.communicate(timeout=60)
        assert waiting.returncode == 0, err
        done = json.loads(out)
        assert (done["status"], done["exitCode"]) == ("FAILED", 4)
    finally:
        own.stop()
