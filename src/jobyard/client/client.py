"""The synchronous Python SDK over the ``joblet.JobletService`` gRPC API."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType

import grpc

from jobyard.api.gen import joblet_pb2, joblet_pb2_grpc, jobyard_v1_pb2
from jobyard.client.control import ControlMethods
from jobyard.client.errors import CredentialsError, error_from_rpc
from jobyard.client.jobs import Job, StopResult
from jobyard.client.lifecycle import LifecycleMethods, TimeArg, time_arg, whole_seconds
from jobyard.client.logs import LogMethods
from jobyard.client.monitoring import MonitoringMethods
from jobyard.client.resources import ResourceMethods
from jobyard.client.settings import ENV_NAMES, ClientSettings
from jobyard.client.uploads import read_uploads
from jobyard.client.workflows import WorkflowMethods
from jobyard.domain.errors import InvalidArgument

# Unary calls that take longer than this are reported as failures rather than hanging.
CALL_TIMEOUT_SECONDS = 30.0
MAX_RECEIVE_BYTES = 64 * 1024 * 1024
# gRPC's own reconnect backoff grows to 2 minutes by default: a client that resumes a log
# stream after a server restart would wait that long once the server is back.
MAX_RECONNECT_BACKOFF_MS = 5000

PathArg = str | os.PathLike[str]


class Client(
    WorkflowMethods,
    LogMethods,
    LifecycleMethods,
    ControlMethods,
    MonitoringMethods,
    ResourceMethods,
):
    """A connection to a jobyard server, authenticated with a client certificate.

    Arguments left out come from ``$JOBYARD_SERVER``/``$JOBLET_SERVER``,
    ``$JOBYARD_CERT_PATH``/``$JOBLET_CERT_PATH`` and so on, then from the seed's defaults
    (``localhost:50051``, ``certs/client-cert.pem``, ``certs/client-key.pem``,
    ``certs/ca-cert.pem``). ``insecure`` talks plaintext to a server started with
    ``--insecure-dev``. Failures raise :class:`jobyard.domain.errors.JobyardError` subclasses.

    >>> with Client() as c:                                     # doctest: +SKIP
    ...     job = c.submit("bash", ["-c", "echo hi"])
    ...     print(c.wait(job.id).status, b"".join(c.logs(job.id)))
    """

    def __init__(
        self,
        server: str | None = None,
        cert: PathArg | None = None,
        key: PathArg | None = None,
        ca: PathArg | None = None,
        *,
        insecure: bool = False,
        timeout: float | None = CALL_TIMEOUT_SECONDS,
    ) -> None:
        self.settings = ClientSettings.resolve(server, cert, key, ca)
        self.timeout = timeout
        self._channel = _open_channel(self.settings, insecure)
        self._stub = joblet_pb2_grpc.JobletServiceStub(self._channel)

    def submit(
        self,
        command: str,
        args: Sequence[str] = (),
        *,
        name: str = "",
        max_cpu: int = 0,
        max_memory: int = 0,
        max_iobps: int = 0,
        max_pids: int = 0,
        max_disk: int = 0,
        cpu_cores: str = "",
        env: Mapping[str, str] | None = None,
        secret_env: Mapping[str, str] | None = None,
        time_limit: float = 0,
        schedule: datetime | str | None = None,
        labels: Mapping[str, str] | None = None,
        network: str = "",
        replicas: int = 1,
        backend: str = "",
        uploads: Sequence[PathArg] = (),
        volumes: Sequence[str] = (),
        runtime: str = "",
        request_id: str | None = None,
    ) -> Job:
        """Run ``command args...`` as a new job. A limit of 0 means the server's default.

        ``time_limit`` is wall time in seconds from the start (0: the server's jobTimeout);
        ``schedule`` a start time (datetime or RFC 3339) before which the job waits;
        ``network`` "host" (the default) or "none" (a network namespace with only loopback);
        ``replicas`` runs the command that many times, as ranks 0..replicas-1 of one job
        (limits are the job's, shared by its ranks; ``logs(id, rank=r)`` reads one rank);
        ``backend`` where it runs, "local" or "slurm" ("": the server's default);
        ``uploads`` local files and directories placed in the job's /work before it starts;
        ``volumes`` volume names mounted at /volumes/NAME; ``runtime`` a runtime's name;
        ``max_disk`` MB the job may write to /work and its output together (past it its
        writes fail or it is stopped with reason DISK_LIMIT).

        Submitting is idempotent: the call carries a request id (``request_id``, or a new
        one) and is retried with it when its answer is lost, so it creates one job at most;
        the same ``request_id`` with other arguments is refused (AlreadyExists).
        """
        if isinstance(args, str):
            raise TypeError("args must be a sequence of strings, not one string")
        if replicas < 1:
            # On the wire 0 means "not given" (1): refuse it here rather than run one rank.
            raise InvalidArgument(f"invalid replicas {replicas}: must be at least 1")
        request = joblet_pb2.RunJobReq(
            command=command,
            args=list(args),
            name=name,
            maxCPU=max_cpu,
            maxMemory=max_memory,
            maxIOBPS=max_iobps,
            maxPids=max_pids,
            maxDisk=max_disk,
            cpuCores=cpu_cores,
            environment=dict(env or {}),
            secret_environment=dict(secret_env or {}),
            timeLimitSeconds=whole_seconds(time_limit),
            schedule=time_arg(schedule),
            labels=dict(labels or {}),
            network=network,
            replicas=replicas,
            backend=backend,
            uploads=read_uploads(uploads),
            volumes=list(volumes),
            runtime=runtime,
        )
        # jobyard.v1: the seed's flat RunJobRes carries only ten of the job's fields.
        return Job.from_details(self._create(self._v1.RunJob, request, request_id))

    def job(self, id: str) -> Job:
        """The job with this id (or unique id prefix), with its history."""
        return Job.from_details(self._unary(self._v1.GetJob, jobyard_v1_pb2.JobRef(id=id)))

    def jobs(
        self,
        *,
        status: Iterable[str] = (),
        name: str = "",
        labels: Mapping[str, str] | None = None,
        owner: str = "",
        created_after: TimeArg = None,
        created_before: TimeArg = None,
        limit: int | None = None,
    ) -> list[Job]:
        """Every job the server knows, oldest first; with filters (or a limit) the matching
        ones, newest first (see :meth:`list_jobs` for one page at a time)."""
        filters = {"status": status, "name": name, "labels": labels, "owner": owner,
                   "created_after": created_after, "created_before": created_before}  # fmt: skip
        if any(filters.values()) or limit is not None:
            return list(itertools.islice(self.iter_jobs(**filters), limit))
        res = self._unary(self._stub.ListJobs, joblet_pb2.EmptyRequest())
        return [Job.from_proto(job) for job in res.jobs]

    def stop(self, id: str) -> StopResult:
        """Stop a job: SIGTERM to all its processes, SIGKILL after the grace period."""
        res = self._unary(self._stub.StopJob, joblet_pb2.StopJobReq(id=id))
        return StopResult.from_proto(res)

    def logs(self, id: str, follow: bool = False, rank: int = 0) -> Iterator[bytes]:
        """The job's output (stdout and stderr merged) in chunks, from the first byte.

        With ``follow`` the iterator goes on with live output until the job ends. ``rank``
        picks one replica's output (0, the default, is the job's output).
        """
        return self._chunks(id, follow, timeout=None, rank=rank)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _chunks(
        self, id: str, follow: bool, timeout: float | None, rank: int = 0
    ) -> Iterator[bytes]:
        """Iterate one GetJobLogs stream, opened at the first ``next()``.

        A passed deadline raises ``TimeoutError``.
        """
        if timeout is not None and timeout <= 0:
            raise TimeoutError(f"no time left to follow job {id}")
        request = joblet_pb2.GetJobLogsReq(id=id, follow=follow, rank=rank)
        call = self._stub.GetJobLogs(request, timeout=timeout)
        try:
            for chunk in call:
                if chunk.payload:
                    yield chunk.payload
        except grpc.RpcError as exc:
            if exc.code() is grpc.StatusCode.DEADLINE_EXCEEDED:
                raise TimeoutError(exc.details() or "deadline exceeded") from exc
            raise error_from_rpc(exc, self.settings.server) from exc
        finally:
            # Ends the RPC when the caller stops early (break, Ctrl+C); harmless after the end.
            call.cancel()


def _open_channel(settings: ClientSettings, insecure: bool) -> grpc.Channel:
    options = [
        ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
        ("grpc.max_reconnect_backoff_ms", MAX_RECONNECT_BACKOFF_MS),
    ]
    if insecure:
        return grpc.insecure_channel(settings.server, options=options)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read(settings.ca, "ca"),
        private_key=_read(settings.key, "key"),
        certificate_chain=_read(settings.cert, "cert"),
    )
    return grpc.secure_channel(settings.server, credentials, options=options)


_WHAT = {"cert": "client certificate", "key": "client key", "ca": "CA certificate"}


def _read(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise CredentialsError(
            f"cannot read the {_WHAT[setting]} {path}: {reason} "
            f"(create certificates with `jobyard certs init --dir certs`, "
            f"or pass --{setting} / set ${ENV_NAMES[setting][0]})"
        ) from exc
