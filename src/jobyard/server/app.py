"""Assembles and runs the daemon: store, runtime, log hub, engine, gRPC server."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import logging.handlers
import queue
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from jobyard.accounting.sqlite import SQLiteLedger
from jobyard.api.gen import joblet_pb2_grpc, jobyard_v1_pb2_grpc
from jobyard.config import ServerConfig, backend_names
from jobyard.domain.errors import FailedPrecondition, InvalidArgument
from jobyard.domain.workflows import WorkflowLimits
from jobyard.engine import EngineConfig, JobEngine
from jobyard.engine.accounting import Accounting
from jobyard.engine.backends import Backends
from jobyard.engine.networks import HostNetworks
from jobyard.engine.parsing import ProcessWorkflowParser
from jobyard.engine.requests import RequestKeys
from jobyard.engine.resources import Registry
from jobyard.engine.runtimes import HostRuntimes
from jobyard.engine.volumes import HostVolumes
from jobyard.engine.workflows import WorkflowRunner
from jobyard.http.server import HttpServer
from jobyard.logs import JobLayout, LogConfig, LogHub
from jobyard.metrics import Metrics
from jobyard.runtime.base import Runtime
from jobyard.runtime.capacity import Capacity, host_memory_mb
from jobyard.server.auth import AuthInterceptor
from jobyard.server.joblet import JobletServicer, JobServicer
from jobyard.server.metering import MeteringInterceptor
from jobyard.server.monitoring import MonitoringServicer
from jobyard.server.provider import Provider, make_provider
from jobyard.server.resources import NetworkServicer, RuntimeServicer, VolumeServicer
from jobyard.server.strict import StrictRequestInterceptor
from jobyard.server.v1 import JobyardServicer
from jobyard.store import SQLiteStore
from jobyard.store.resources import SQLiteResourceStore
from jobyard.store.sealing import KEY_FILE_NAME, SecretBox
from jobyard.store.workflows import SQLiteWorkflowStore
from jobyard.ucloud.catalog import Catalog

if TYPE_CHECKING:
    from jobyard.runtime.local import LocalRuntimeConfig

log = logging.getLogger("jobyard.server")

SERVICES = (
    "joblet.JobletService",
    "joblet.JobService",
    "joblet.MonitoringService",
    "joblet.VolumeService",
    "joblet.RuntimeService",
    "joblet.NetworkService",
    "jobyard.v1.JobyardService",
)
SHUTDOWN_GRACE_SECONDS = 2.0
SLURM_LOG_POLL_SECONDS = 0.25  # how stale a Slurm job's followed output may be, at most
# Room for a RunWorkflow's other fields beside a document of the largest allowed size.
WORKFLOW_MESSAGE_HEADROOM_BYTES = 64 * 1024


def make_backends(config: ServerConfig, layout: JobLayout) -> Backends:
    """The runtimes of the backends the config names, the default one first."""
    names = backend_names(config.jobyard)
    return Backends([make_runtime(name, config, layout) for name in names], names[0])


def make_runtime(name: str, config: ServerConfig, layout: JobLayout) -> Runtime:
    if name == "local":
        return make_local_runtime(config, layout)
    if name == "slurm":
        return make_slurm_runtime(config, layout)
    raise InvalidArgument(f"config: unknown backend {name!r}")


def make_local_runtime(config: ServerConfig, layout: JobLayout) -> Runtime:
    from jobyard.runtime.local import LocalRuntime

    return LocalRuntime(local_runtime_config(config, layout), capacity=local_capacity(config))


def make_slurm_runtime(config: ServerConfig, layout: JobLayout) -> Runtime:
    from jobyard.runtime.slurm.setup import slurm_runtime

    # Jobs on Slurm run as the local backend's users would: a uid of their own, the data
    # directory and certificates hidden.
    return slurm_runtime(config, layout, local_runtime_config(config, layout))


def local_runtime_config(config: ServerConfig, layout: JobLayout) -> LocalRuntimeConfig:
    from jobyard.runtime.local import LocalRuntimeConfig
    from jobyard.runtime.local.users import parse_uid_range

    j = config.jobyard
    uid_range = parse_uid_range(j.job_uid_range)
    if uid_range and uid_range[1] - uid_range[0] + 1 < config.joblet.max_concurrent_jobs:
        raise InvalidArgument(
            f"config: jobyard.jobUidRange {j.job_uid_range} holds fewer uids than "
            f"joblet.maxConcurrentJobs ({config.joblet.max_concurrent_jobs}): one uid per job"
        )
    hidden = [layout.data_dir.resolve()]
    if config.certs_dir is not None:
        hidden.append(Path(config.certs_dir).resolve())
    return LocalRuntimeConfig(
        uid_range=uid_range,
        fixed_uids=j.job_uids,
        owner_accounts=j.job_owner_accounts,
        hidden=tuple(hidden),
        cgroup_root=j.cgroup_root,
        default_max_pids=j.default_max_pids,
        # Also the grace for a job's other ranks when one rank fails.
        stop_grace_seconds=config.joblet.cleanup_timeout_seconds,
    )


def local_capacity(config: ServerConfig) -> Capacity:
    """This host's CPUs and memory, and the configured bounds on what runs at once."""
    return Capacity(
        max_jobs=config.joblet.max_concurrent_jobs,
        max_cpu=config.jobyard.max_total_cpu,
        max_memory=config.jobyard.max_total_memory,
        memory_mb=host_memory_mb(),
    )


def engine_config(config: ServerConfig) -> EngineConfig:
    j = config.joblet
    return EngineConfig(
        default_max_cpu=j.default_cpu_limit,
        default_max_memory=j.default_memory_limit,
        default_max_iobps=j.default_io_limit,
        default_max_pids=config.jobyard.default_max_pids,
        default_max_disk=config.jobyard.default_max_disk,
        stop_grace_seconds=j.cleanup_timeout_seconds,
        default_time_limit_seconds=j.job_timeout_seconds,
        max_upload_bytes=config.jobyard.max_upload_bytes,
    )


def log_config(config: ServerConfig) -> LogConfig:
    return LogConfig(
        max_output_bytes=config.jobyard.max_output_bytes,
        follower_stall_timeout_seconds=config.jobyard.log_follower_stall_timeout_seconds,
        disk_reserve_bytes=config.jobyard.disk_reserve_bytes,
        # Slurm jobs write on other nodes, which inotify does not hear of: poll as well.
        poll_seconds=SLURM_LOG_POLL_SECONDS if "slurm" in backend_names(config.jobyard) else 0,
    )


def workflow_limits(config: ServerConfig) -> WorkflowLimits:
    j = config.jobyard
    return WorkflowLimits(max_bytes=j.max_workflow_bytes, max_jobs=j.max_workflow_jobs)


def max_receive_bytes(config: ServerConfig) -> int:
    """gRPC's receive limit: the configured one, raised to fit the largest workflow allowed
    with the largest uploads allowed (a RunJob's files, a RunWorkflow's workflowFiles), so
    that an oversize one gets jobyard's INVALID_ARGUMENT naming its limit rather than gRPC's
    bare RESOURCE_EXHAUSTED (and the default 64 MiB of uploads can be sent at all)."""
    j = config.jobyard
    largest = j.max_workflow_bytes + j.max_upload_bytes + WORKFLOW_MESSAGE_HEADROOM_BYTES
    return max(config.grpc.max_recv_msg_size, largest)


def _credentials(certs_dir: Path) -> grpc.ServerCredentials:
    def read(name: str) -> bytes:
        path = certs_dir / name
        try:
            return path.read_bytes()
        except OSError as exc:
            raise InvalidArgument(
                f"cannot read {path}: {exc.strerror} (create certificates with "
                f"`jobyard certs init --dir {certs_dir}`)"
            ) from exc

    # TODO: require TLS 1.3 (the seed's contract) once grpcio exposes a minimum version for
    # server credentials (grpc/grpc#43074, #43080). Today TLS 1.3 is what every current
    # client negotiates (tested), but a client capped at TLS 1.2 is still accepted; a
    # TLS-1.3-only GRPC_SSL_CIPHER_SUITES makes BoringSSL refuse to start the listener.
    return grpc.ssl_server_credentials(
        [(read("server-key.pem"), read("server-cert.pem"))],
        root_certificates=read("ca-cert.pem"),
        require_client_auth=True,
    )


@dataclasses.dataclass
class RunningServer:
    """A started server; ``port`` is the bound port (useful with port 0 in tests)."""

    server: grpc.aio.Server
    engine: JobEngine
    workflows: WorkflowRunner
    hub: LogHub
    store: SQLiteStore
    port: int
    catalog: Catalog = dataclasses.field(default_factory=Catalog)  # the `ucloud:` products
    ledger: SQLiteLedger | None = None  # wallets and charges
    http: HttpServer | None = None
    provider: Provider | None = None  # the UCloud provider face's parts (ucloud.core set)
    metrics: Metrics = dataclasses.field(default_factory=Metrics)  # this server's registry

    @property
    def http_port(self) -> int:
        assert self.http is not None, "the HTTP face is not served"
        return self.http.port

    async def stop(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        # Jobs keep running: the next server adopts them. Followers first: they end with
        # UNAVAILABLE and their offset, so that clients resume elsewhere or later.
        self.hub.close()
        if self.http is not None:
            await self.http.stop()
        if self.provider is not None:
            await self.provider.relay.close()
        await self.server.stop(grace)
        await self.workflows.close()
        await self.engine.close()
        self.hub.close()
        self.store.close()


def make_registry(config: ServerConfig, layout: JobLayout, store: SQLiteStore) -> Registry:
    """Volumes and runtimes under the data dir."""
    runtimes = HostRuntimes(layout.data_dir / "runtimes")
    return Registry(
        SQLiteResourceStore(store.connection), store, HostVolumes(layout.data_dir / "volumes"),
        runtimes, config.jobyard.max_volume_bytes, HostNetworks(layout.data_dir),
    )  # fmt: skip


async def start_server(
    config: ServerConfig, runtime: Runtime | Backends | None = None, *, charge_rate: float = 1.0
) -> RunningServer:
    """Start the daemon. ``charge_rate`` (seconds of running time charged per second; tests
    raise it so that a priced minute passes quickly) is 1 in production."""
    if config.certs_dir is None and not config.insecure_dev:
        raise InvalidArgument("no certificates given: pass --certs DIR (or --insecure-dev)")
    layout = JobLayout(Path(config.data_dir))
    layout.prepare()
    box = SecretBox.from_file(config.jobyard.secret_key_file or layout.data_dir / KEY_FILE_NAME)
    store = SQLiteStore(layout.database, box)
    hub = LogHub(layout, log_config(config))
    # A job's end must be recorded: a batch that meets a full disk retries after the reserve
    # is freed.
    store.writer.on_full = hub.limits.reserve.release
    hub.start()
    catalog = Catalog.of(config.ucloud)
    # TODO: the ledger still commits on the event loop (store.connection); queue its writes
    # to store.writer with an overlay, as the workflow store does.
    ledger = SQLiteLedger(store.connection)
    accounting = Accounting(ledger, catalog.pricing, rate=charge_rate)
    provider = make_provider(config, store)
    if provider is not None:
        accounting = provider.accounting(accounting)
    registry = make_registry(config, layout, store)
    engine = JobEngine(
        store, runtime or make_backends(config, layout), layout, hub, engine_config(config),
        accounting=accounting,
        requests=RequestKeys(box.fingerprint),
        attachments=registry,
    )  # fmt: skip
    metrics = Metrics()
    metrics.bind(engine, store, hub)
    g = config.grpc
    workflows = WorkflowRunner(
        engine,
        SQLiteWorkflowStore(store.connection, box, writer=store.writer),
        ProcessWorkflowParser(workflow_limits(config)),
    )
    server = grpc.aio.server(
        # Metering outermost (refusals count too), then auth: an unauthorized caller learns
        # nothing about parsing.
        interceptors=[
            MeteringInterceptor(metrics),
            AuthInterceptor(insecure=config.certs_dir is None),
            StrictRequestInterceptor(),
        ],
        options=[
            ("grpc.max_receive_message_length", max_receive_bytes(config)),
            ("grpc.max_send_message_length", g.max_send_msg_size),
            ("grpc.keepalive_time_ms", int(g.keep_alive_time_seconds * 1000)),
            # Without this a second server on the same port starts silently and the kernel
            # hands each connection to either one.
            ("grpc.so_reuseport", 0),
        ],
    )
    joblet_pb2_grpc.add_JobletServiceServicer_to_server(JobletServicer(engine), server)
    joblet_pb2_grpc.add_JobServiceServicer_to_server(JobServicer(engine, workflows), server)
    joblet_pb2_grpc.add_MonitoringServiceServicer_to_server(MonitoringServicer(), server)
    joblet_pb2_grpc.add_VolumeServiceServicer_to_server(VolumeServicer(registry), server)
    joblet_pb2_grpc.add_NetworkServiceServicer_to_server(NetworkServicer(registry), server)
    joblet_pb2_grpc.add_RuntimeServiceServicer_to_server(RuntimeServicer(registry, engine), server)
    v1 = JobyardServicer(engine, workflows)
    jobyard_v1_pb2_grpc.add_JobyardServiceServicer_to_server(v1, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = (
        *SERVICES,
        health.SERVICE_NAME,
        reflection.SERVICE_NAME,
    )
    reflection.enable_server_reflection(names, server)
    port = _bind(server, config)
    await registry.start()
    await engine.start()
    await workflows.start()
    await server.start()
    for name in ("", *SERVICES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("server listening | address=%s port=%d tls=%s dataDir=%s",
             config.listen, port, config.certs_dir is not None, config.data_dir)  # fmt: skip
    running = RunningServer(
        server=server, engine=engine, workflows=workflows, hub=hub, store=store, port=port,
        catalog=catalog, ledger=ledger, provider=provider, metrics=metrics,
    )  # fmt: skip
    if provider is not None:
        await provider.start(engine)
    if config.http_listen:
        try:
            running.http = await _start_http(config, running)
        except BaseException:
            await running.stop(grace=0)  # the gRPC face closed too: a server starts whole
            raise
    return running


def _bind(server: grpc.aio.Server, config: ServerConfig) -> int:
    """The port the gRPC face listens on; a clear refusal when it cannot have it."""
    try:
        if config.certs_dir is None:
            return int(server.add_insecure_port(config.listen))
        return int(server.add_secure_port(config.listen, _credentials(Path(config.certs_dir))))
    except RuntimeError:  # grpc says only "Failed to bind"; the cause is in its C log
        raise FailedPrecondition(
            f"cannot listen on {config.listen}: the address is in use "
            "(another server?) or not one of this host's"
        ) from None


async def _start_http(config: ServerConfig, running: RunningServer) -> HttpServer:
    """The HTTPS face on the same engine, database and event loop as gRPC."""
    from jobyard.http.app import create_app
    from jobyard.http.face import HttpFace
    from jobyard.http.planner import CatalogPlanner, NoCatalog
    from jobyard.http.server import start_http
    from jobyard.store.tokens import SQLiteTokens
    from jobyard.store.ucloud_specs import SQLiteUcloudSpecs

    store = running.store
    face = HttpFace(
        engine=running.engine,
        tokens=SQLiteTokens(store.connection),
        specs=SQLiteUcloudSpecs(store.connection),
        planner=NoCatalog() if config.ucloud is None else CatalogPlanner(config.ucloud),
        ledger=running.ledger,
        metrics=running.metrics,
        workflows=running.workflows,
    )
    certs = None if config.certs_dir is None else Path(config.certs_dir)
    provider = running.provider
    provider_face = None if provider is None else provider.face(face.tokens, face.specs)
    return await start_http(create_app(face, provider_face), config.http_listen, certs)


class _Formatter(logging.Formatter):
    """``[2024-01-15T10:30:00Z] [INFO] job started | jobId=...`` as the seed shows."""

    converter = staticmethod(time.gmtime)

    def __init__(self) -> None:
        super().__init__("[%(asctime)s] [%(levelname)s] %(message)s", "%Y-%m-%dT%H:%M:%SZ")


def configure_logging(level: int = logging.INFO) -> logging.handlers.QueueListener:
    """Log lines to stderr, written by a thread of their own: a slow stderr (a file on a
    busy disk, a full pipe) must not stall the event loop. Stop the listener to flush."""
    handler = logging.StreamHandler()
    handler.setFormatter(_Formatter())
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(records, handler)
    listener.start()
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(records)]
    root.setLevel(level)
    return listener


async def _serve(config: ServerConfig) -> None:
    running = await start_server(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("server shutting down (running jobs keep running)")
    await running.stop()


def serve(config: ServerConfig) -> None:
    """Run the daemon in the foreground until SIGINT/SIGTERM."""
    listener = configure_logging()
    try:
        asyncio.run(_serve(config))
    finally:
        listener.stop()
