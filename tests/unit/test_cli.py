"""The CLI through click's runner, with a fake client standing in for the server."""

from __future__ import annotations

import dataclasses
import json
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from jobyard.certs import identity_from_pem
from jobyard.cli import state as state_module
from jobyard.cli.logs import attach_follow_values
from jobyard.cli.main import cli
from jobyard.client import Job, JobDetails, JobUsage, LogChunk, StopResult
from jobyard.client.lifecycle import JobEvent
from jobyard.config import ServerConfig
from jobyard.domain.access import Identity, Role
from jobyard.domain.errors import NotFound

JOB_ID = "f47ac10b-58cc-4372-a567-0e02b2c3d479"


class FakeClient:
    """Records what the CLI asked for; answers with canned jobs."""

    instances: list[FakeClient] = []

    def __init__(self, *args: Any, insecure: bool = False) -> None:
        self.args, self.insecure = args, insecure
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.job_answer = Job(
            id=JOB_ID,
            command="python3",
            args=("script.py",),
            status="RUNNING",
            start_time="2024-01-15T10:30:00Z",
            max_cpu=50,
            max_memory=512,
        )
        self.usage_answer: JobUsage | None = None
        self.error: Exception | None = None
        self.chunks: list[bytes | BaseException] = []
        self.closed = False
        FakeClient.instances.append(self)

    def _call(self, method: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append((method, args, kwargs))
        if self.error is not None:
            raise self.error

    def submit(self, command: str, args: Any, **kwargs: Any) -> Job:
        self._call("submit", command, tuple(args), **kwargs)
        return Job(
            id=JOB_ID,
            name=kwargs["name"],
            command=command,
            args=tuple(args),
            status="INITIALIZING",
            start_time="2024-01-15T10:30:00Z",
            max_cpu=kwargs["max_cpu"] or 100,
            max_memory=kwargs["max_memory"] or 512,
            secret_environment={k: "********" for k in kwargs["secret_env"]},
        )

    def job(self, id: str) -> Job:
        self._call("job", id)
        return self.job_answer

    def jobs(self) -> list[Job]:
        self._call("jobs")
        return [self.job_answer] if self.job_answer.id else []

    def stop(self, id: str) -> StopResult:
        self._call("stop", id)
        return StopResult(id=id, status="STOPPED", end_time="2024-01-15T10:45:00Z", exit_code=-1)

    def logs(self, id: str, follow: bool = False) -> Iterator[bytes]:
        self._call("logs", id, follow=follow)
        for chunk in self.chunks:
            if isinstance(chunk, BaseException):
                raise chunk
            yield chunk

    def read_logs(self, id: str, **kwargs: Any) -> Iterator[LogChunk]:
        self._call("read_logs", id, follow=kwargs["follow"])
        offset = 0
        for chunk in self.chunks:
            if isinstance(chunk, BaseException):
                raise chunk
            yield LogChunk(offset, chunk)
            offset += len(chunk)

    def wait(self, id: str, timeout: float | None = None, *, on_event: Any = None) -> Job:
        self._call("wait", id, timeout=timeout)
        if on_event is not None:
            on_event(JobEvent(dataclasses.replace(self.job_answer, status="RUNNING"), True))
            on_event(JobEvent(self.job_answer, False))
        return self.job_answer

    def details(self, id: str) -> JobDetails:
        self._call("details", id)
        return JobDetails(self.job_answer, self.usage_answer, 0.0, 0)

    def suspend(self, id: str) -> JobDetails:
        self._call("suspend", id)
        return JobDetails(dataclasses.replace(self.job_answer, status="SUSPENDED"), None, 0.0, 0)

    def resume(self, id: str) -> JobDetails:
        self._call("resume", id)
        return JobDetails(self.job_answer, None, 0.0, 0)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeClient]]:
    FakeClient.instances = []
    monkeypatch.setattr(state_module, "Client", FakeClient)
    yield FakeClient


def invoke(args: list[str], setup: Any = None) -> Result:
    """Run the CLI; ``setup`` may adjust each FakeClient as the command creates it."""
    if setup is not None:
        original = FakeClient.__init__

        def init(self: FakeClient, *a: Any, **kw: Any) -> None:
            original(self, *a, **kw)
            setup(self)

        FakeClient.__init__ = init  # type: ignore[method-assign]
        try:
            return CliRunner().invoke(cli, args)
        finally:
            FakeClient.__init__ = original  # type: ignore[method-assign]
    return CliRunner().invoke(cli, args)


def submitted(fake: type[FakeClient]) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    name, args, kwargs = fake.instances[-1].calls[0]
    assert name == "submit"
    return args[0], args[1], kwargs


# --- run -------------------------------------------------------------------------------------


def test_run_passes_everything_after_the_command_to_it(fake: type[FakeClient]) -> None:
    result = invoke(["run", "bash", "-c", "echo hi"])

    assert result.exit_code == 0, result.output
    command, args, _ = submitted(fake)
    assert (command, args) == ("bash", ("-c", "echo hi"))
    assert fake.instances[-1].closed


def test_run_options_before_the_command_are_ours_after_it_are_the_commands(
    fake: type[FakeClient],
) -> None:
    result = invoke(
        [
            "run",
            "--max-cpu=50",
            "--max-memory",
            "256",
            "python3",
            "-c",
            "x",
            "--max-cpu=1",
            "--help",
        ]
    )

    assert result.exit_code == 0, result.output
    command, args, kwargs = submitted(fake)
    assert (command, args) == ("python3", ("-c", "x", "--max-cpu=1", "--help"))
    assert (kwargs["max_cpu"], kwargs["max_memory"], kwargs["max_iobps"]) == (50, 256, 0)


def test_run_backend_names_where_the_job_runs(fake: type[FakeClient]) -> None:
    assert invoke(["run", "--backend", "slurm", "hostname"]).exit_code == 0
    assert submitted(fake)[2]["backend"] == "slurm"
    assert invoke(["run", "hostname"]).exit_code == 0
    assert submitted(fake)[2]["backend"] == ""  # the server's default


def test_run_prints_the_seeds_block(fake: type[FakeClient]) -> None:
    result = invoke(["run", "--max-cpu=50", "python3", "script.py"])

    assert result.stdout == (
        "Job started:\n"
        f"ID: {JOB_ID}\n"
        "Command: python3 script.py\n"
        "Status: INITIALIZING\n"
        "StartTime: 2024-01-15T10:30:00Z\n"
        "MaxCPU: 50\n"
        "MaxMemory: 512\n"
        "Network: host (shared with system)\n"
    )


def test_run_with_name_env_and_secret_never_prints_the_secret(fake: type[FakeClient]) -> None:
    result = invoke(
        [
            "run",
            "--name",
            "greet",
            "--env",
            "A=1",
            "--env",
            "B=x=y",
            "--secret-env",
            "TOKEN=hunter2",
            "--cpu-cores",
            "0-1",
            "--max-pids",
            "9",
            "--max-disk",
            "500",
            "echo",
            "hi",
        ]
    )

    assert result.exit_code == 0, result.output
    _, _, kwargs = submitted(fake)
    assert kwargs["env"] == {"A": "1", "B": "x=y"}
    assert kwargs["secret_env"] == {"TOKEN": "hunter2"}
    assert (kwargs["name"], kwargs["cpu_cores"], kwargs["max_pids"]) == ("greet", "0-1", 9)
    assert kwargs["max_disk"] == 500
    assert "Name: greet\n" in result.stdout
    assert "hunter2" not in result.output


def test_run_json_uses_proto_field_names_and_masks_secrets(fake: type[FakeClient]) -> None:
    result = invoke(["run", "--json", "--secret-env", "TOKEN=hunter2", "echo", "hi"])

    data = json.loads(result.stdout)
    assert data["id"] == JOB_ID
    assert data["maxCPU"] == 100
    assert data["args"] == ["hi"]
    assert data["secret_environment"] == {"TOKEN": "********"}
    assert "hunter2" not in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--max-cpu=-1", "echo"],
        ["run", "--max-memory=lots", "echo"],
        ["run", "--env", "NOEQUALS", "echo"],
        ["run", "--bogus", "echo"],
        ["run"],
    ],
)
def test_run_usage_errors_exit_2_without_calling_the_server(
    fake: type[FakeClient], args: list[str]
) -> None:
    result = invoke(args)

    assert result.exit_code == 2
    assert "Error:" in result.stderr
    assert all(not c.calls for c in fake.instances)


# --- status, list, stop, wait, errors --------------------------------------------------------


def test_status_prints_the_seeds_block_then_extras(fake: type[FakeClient]) -> None:
    def setup(c: FakeClient) -> None:
        c.job_answer = Job(
            id=JOB_ID,
            command="python3",
            args=("script.py",),
            status="FAILED",
            start_time="s",
            end_time="e",
            max_cpu=50,
            max_memory=512,
            exit_code=137,
            owner="alice",
            project="physics",
            termination_reason="OOM_KILLED",
            message="memory limit reached",
            secret_environment={"TOKEN": "********"},
        )

    result = invoke(["status", JOB_ID], setup)

    assert result.exit_code == 0
    assert result.stdout == (
        f"Id: {JOB_ID}\nCommand: python3 script.py\nStatus: FAILED\nStarted At: s\n"
        "Ended At: e\nMaxCPU: 50\nMaxMemory: 512\nMaxIOBPS: 0\nExitCode: 137\n"
        "Owner: alice\nProject: physics\nReason: OOM_KILLED\nMessage: memory limit reached\n"
        "SecretEnvironment: TOKEN=********\n"
    )


def test_status_of_a_running_job_has_an_empty_end(fake: type[FakeClient]) -> None:
    result = invoke(["status", JOB_ID])

    assert "Ended At: \n" in result.stdout
    assert "Reason:" not in result.stdout


def test_list_prints_one_line_per_job(fake: type[FakeClient]) -> None:
    result = invoke(["list"])

    assert result.stdout == (
        f"{JOB_ID} RUNNING StartTime: 2024-01-15T10:30:00Z Command: python3 script.py\n"
    )


def test_list_says_no_jobs_or_prints_an_empty_json_array(fake: type[FakeClient]) -> None:
    def empty(c: FakeClient) -> None:
        c.job_answer = Job(id="")

    assert invoke(["list"], empty).stdout == "No jobs\n"
    assert json.loads(invoke(["list", "--json"], empty).stdout) == []


def test_stop_prints_the_seeds_block(fake: type[FakeClient]) -> None:
    result = invoke(["stop", JOB_ID])

    assert result.stdout == (
        f"Job stopped successfully:\nID: {JOB_ID}\nStatus: STOPPED\nExitCode: -1\n"
        "EndTime: 2024-01-15T10:45:00Z\n"
    )
    assert json.loads(invoke(["stop", "--json", JOB_ID]).stdout)["exitCode"] == -1


def test_wait_passes_the_timeout(fake: type[FakeClient]) -> None:
    result = invoke(["wait", "--timeout", "2.5", JOB_ID])

    assert result.exit_code == 0
    assert fake.instances[-1].calls == [("wait", (JOB_ID,), {"timeout": 2.5})]
    assert result.stdout.startswith(f"Id: {JOB_ID}\n")
    # Progress goes to stderr, once per unfinished status; stdout is the job alone.
    assert result.stderr == f"Waiting for job {JOB_ID}: RUNNING\n"


def test_server_errors_print_the_message_on_stderr_and_exit_1(fake: type[FakeClient]) -> None:
    def fail(c: FakeClient) -> None:
        c.error = NotFound(f"job not found: {JOB_ID}")

    result = invoke(["status", JOB_ID], fail)

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"Error: job not found: {JOB_ID}\n"


def test_global_options_reach_the_client(fake: type[FakeClient]) -> None:
    invoke(
        [
            "--server",
            "h:1",
            "--cert",
            "c.pem",
            "--key",
            "k.pem",
            "--ca",
            "ca.pem",
            "--insecure",
            "list",
        ]
    )

    client = fake.instances[-1]
    assert client.args == ("h:1", "c.pem", "k.pem", "ca.pem")
    assert client.insecure


def test_a_missing_certificate_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("JOBYARD_CA_PATH", "JOBLET_CA_PATH"):
        monkeypatch.delenv(name, raising=False)

    result = CliRunner().invoke(cli, ["list"])

    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cannot read the CA certificate certs/ca-cert.pem")
    assert "jobyard certs init" in result.stderr


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])

    assert result.exit_code == 0
    assert result.stdout.startswith("jobyard, version ")


# --- log -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "follow", "job_id"),
    [
        ([JOB_ID], True, JOB_ID),
        (["-f", JOB_ID], True, JOB_ID),
        (["--follow", JOB_ID], True, JOB_ID),
        ([JOB_ID, "-f"], True, JOB_ID),
        (["--follow=false", JOB_ID], False, JOB_ID),
        (["--follow=FALSE", JOB_ID], False, JOB_ID),
        (["--follow=0", JOB_ID], False, JOB_ID),
        (["--follow=no", JOB_ID], False, JOB_ID),
        (["--follow=true", JOB_ID], True, JOB_ID),
        (["--follow", "false", JOB_ID], False, JOB_ID),
        (["-f", "no", JOB_ID], False, JOB_ID),
        # A lone word after -f is the id (ids are hex: "0" could be a prefix).
        (["-f", "0"], True, "0"),
    ],
)
def test_log_follow_value_parsing(
    fake: type[FakeClient], args: list[str], follow: bool, job_id: str
) -> None:
    result = invoke(["log", *args])

    assert result.exit_code == 0, result.output
    assert fake.instances[-1].calls == [("read_logs", (job_id,), {"follow": follow})]


def test_log_rejects_a_follow_value_that_is_not_boolean(fake: type[FakeClient]) -> None:
    result = invoke(["log", "--follow=maybe", JOB_ID])

    assert result.exit_code == 2
    assert "'maybe' is not one of true, false" in result.stderr


def test_attach_follow_values_leaves_everything_after_double_dash() -> None:
    assert attach_follow_values(["-f", "--", "-f"]) == ["--follow=true", "--", "-f"]


def test_log_writes_exactly_the_jobs_bytes_to_stdout_and_the_header_to_stderr(
    fake: type[FakeClient],
) -> None:
    def chunks(c: FakeClient) -> None:
        c.chunks = [b"Starting...\n", b"\xff\x00binary", b" no newline"]

    result = invoke(["log", JOB_ID], chunks)

    assert result.exit_code == 0
    assert result.stdout_bytes == b"Starting...\n\xff\x00binary no newline"
    assert result.stderr == (f"Logs for job {JOB_ID} (Press Ctrl+C to exit if streaming):\n")


def test_log_ctrl_c_exits_quietly_with_130(fake: type[FakeClient]) -> None:
    def interrupt(c: FakeClient) -> None:
        c.chunks = [b"partial\n", KeyboardInterrupt()]

    result = invoke(["log", JOB_ID], interrupt)

    assert result.exit_code == 130
    assert result.stdout_bytes == b"partial\n"
    assert "Aborted" not in result.stderr


# --- certs -----------------------------------------------------------------------------------


def test_certs_init_writes_and_lists_the_files(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["certs", "init", "--dir", str(tmp_path / "c")])

    assert result.exit_code == 0, result.output
    listed = {Path(line).name for line in result.stdout.splitlines()}
    assert {"ca-cert.pem", "server-key.pem", "viewer-client-cert.pem", "client-cert.pem"} <= listed
    assert all(Path(line).is_file() for line in result.stdout.splitlines())


def test_certs_init_twice_refuses_then_force_replaces(tmp_path: Path) -> None:
    runner = CliRunner()
    runner.invoke(cli, ["certs", "init", "--dir", str(tmp_path)])
    before = (tmp_path / "ca-cert.pem").read_bytes()

    again = runner.invoke(cli, ["certs", "init", "--dir", str(tmp_path)])
    assert again.exit_code == 1
    assert "already exists" in again.stderr and "--force" in again.stderr
    assert (tmp_path / "ca-cert.pem").read_bytes() == before

    forced = runner.invoke(cli, ["certs", "init", "--dir", str(tmp_path), "--force"])
    assert forced.exit_code == 0
    assert (tmp_path / "ca-cert.pem").read_bytes() != before


def test_certs_client_issues_a_pair(tmp_path: Path) -> None:
    runner = CliRunner()
    runner.invoke(cli, ["certs", "init", "--dir", str(tmp_path)])

    result = runner.invoke(
        cli, ["certs", "client", "--dir", str(tmp_path), "--name", "alice", "--role", "viewer"]
    )

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        str(tmp_path / "alice-client-cert.pem"),
        str(tmp_path / "alice-client-key.pem"),
    ]
    bad = runner.invoke(
        cli, ["certs", "client", "--dir", str(tmp_path), "--name", "bob", "--role", "root"]
    )
    assert bad.exit_code == 2


def test_certs_client_issues_a_user_of_a_project(tmp_path: Path) -> None:
    runner = CliRunner()
    runner.invoke(cli, ["certs", "init", "--dir", str(tmp_path)])

    args = ["certs", "client", "--dir", str(tmp_path), "--name", "carol"]
    result = runner.invoke(cli, [*args, "--role", "user", "--project", "physics"])

    assert result.exit_code == 0, result.output
    pem = (tmp_path / "carol-client-cert.pem").read_bytes()
    assert identity_from_pem(pem) == Identity("carol", Role.USER, "physics")
    ucloud = runner.invoke(cli, [*args, "--role", "ucloud", "--force"])
    assert ucloud.exit_code == 2
    assert "token" in ucloud.stderr and "HTTP provider face" in ucloud.stderr


def test_certs_client_without_a_ca_says_to_init(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["certs", "client", "--dir", str(tmp_path), "--name", "a", "--role", "admin"]
    )

    assert result.exit_code == 1
    assert "jobyard certs init" in result.stderr


# --- server ----------------------------------------------------------------------------------


@pytest.fixture
def fake_serve(monkeypatch: pytest.MonkeyPatch) -> list[ServerConfig]:
    """Stand in for jobyard.server.app so no server starts; records the config it got."""
    served: list[ServerConfig] = []
    module = types.ModuleType("jobyard.server.app")
    module.serve = served.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "jobyard.server.app", module)
    return served


def test_server_refuses_to_start_without_certs(
    fake_serve: list[ServerConfig], tmp_path: Path
) -> None:
    result = CliRunner().invoke(cli, ["server", "--data-dir", str(tmp_path)])

    assert result.exit_code == 2
    assert "refusing to start without TLS" in result.stderr
    assert "--insecure-dev" in result.stderr
    assert fake_serve == []


def test_server_refuses_a_certs_dir_without_server_files(
    fake_serve: list[ServerConfig], tmp_path: Path
) -> None:
    result = CliRunner().invoke(cli, ["server", "--certs", str(tmp_path), "--data-dir", "d"])

    assert result.exit_code == 2
    assert "ca-cert.pem, server-cert.pem, server-key.pem" in result.stderr
    assert fake_serve == []


def test_server_rejects_a_bad_listen_address(fake_serve: list[ServerConfig]) -> None:
    result = CliRunner().invoke(cli, ["server", "--insecure-dev", "--listen", "nowhere"])

    assert result.exit_code == 2
    assert fake_serve == []


def test_server_starts_with_certs_and_config(
    fake_serve: list[ServerConfig], tmp_path: Path
) -> None:
    runner = CliRunner()
    runner.invoke(cli, ["certs", "init", "--dir", str(tmp_path / "certs")])
    config_file = tmp_path / "joblet-config.yml"
    config_file.write_text("joblet:\n  defaultMemoryLimit: 256\n")

    result = runner.invoke(
        cli,
        [
            "server",
            "--listen",
            "127.0.0.1:0",
            "--certs",
            str(tmp_path / "certs"),
            "--data-dir",
            str(tmp_path / "data"),
            "--config",
            str(config_file),
        ],
    )

    assert result.exit_code == 0, result.output
    [config] = fake_serve
    assert config.listen == "127.0.0.1:0"
    assert config.certs_dir == (tmp_path / "certs").resolve()
    assert config.data_dir == (tmp_path / "data").resolve()
    assert config.joblet.default_memory_limit == 256
    assert not config.insecure_dev


def test_server_insecure_dev_starts_without_certs(fake_serve: list[ServerConfig]) -> None:
    result = CliRunner().invoke(cli, ["server", "--insecure-dev"])

    assert result.exit_code == 0, result.output
    [config] = fake_serve
    assert config.insecure_dev and config.certs_dir is None
    assert config.listen == "127.0.0.1:50051"
    # The default ./data, made absolute: jobs must not depend on the server's cwd.
    assert config.data_dir == Path("data").resolve()
    assert config.data_dir.is_absolute()


def test_server_reports_a_bad_config_file(fake_serve: list[ServerConfig], tmp_path: Path) -> None:
    config_file = tmp_path / "c.yml"
    config_file.write_text("joblet:\n  nonsense: 1\n")

    result = CliRunner().invoke(cli, ["server", "--insecure-dev", "--config", str(config_file)])

    assert result.exit_code == 1
    assert result.stderr.startswith("Error: config: unknown key joblet.nonsense")
