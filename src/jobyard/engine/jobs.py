"""JobEngine: admission, launch, exit handling, stop and reconciliation.

The engine is event driven: each started job has one watcher task blocked in
``Runtime.wait``; its end finalizes the job and admits the next queued one. All status
changes go through ``Store.transition`` (the one table in :mod:`jobyard.domain.status`).

Jobs run on backends (:mod:`jobyard.engine.backends`), each with its own capacity and
admission order. A backend that queues (a batch system) holds a started job as QUEUED, with
its handle recorded, until it reports that the job's processes run; only then is it RUNNING.

Every command and lookup takes the caller's :class:`~jobyard.domain.access.Identity`: a job
the caller may not see (:func:`~jobyard.domain.access.visible`) is answered as absent
("job not found: ID") and left out of lists. Faces only translate; they decide nothing.

The store applies a change at once and makes it durable in the background (group commit):
the engine awaits ``Store.committed`` only where an answer promises durability (RunJob,
stop, extend, suspend, resume, delete) and before a backend starts anything. Admission
marks each job that fits INITIALIZING at once and launches it in a task of its own, so
independent jobs launch concurrently while each job's own steps stay in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

from jobyard.domain.access import Identity, scope
from jobyard.domain.errors import (
    DataDiskFull,
    FailedPrecondition,
    InvalidArgument,
    JobyardError,
    LaunchError,
    ResourceExhausted,
    StaleTransition,
    job_not_running,
    shortened,
)
from jobyard.domain.jobs import Job, JobSpec, Resources, Usage, is_job_id, new_job_id, utcnow
from jobyard.domain.requests import DuplicateRequest, replayed
from jobyard.domain.status import ACTIVE, Status, TerminationReason, can_transition
from jobyard.domain.uploads import Upload, top_level, validate_uploads
from jobyard.engine.accounting import NO_CREDITS_MESSAGE, Accounting, Charger
from jobyard.engine.attachments import Attachments, NoAttachments, attaches
from jobyard.engine.backends import Backends
from jobyard.engine.control import JobControl, suspension_closed
from jobyard.engine.events import JobEvents
from jobyard.engine.files import JobFiles
from jobyard.engine.reading import JobReading
from jobyard.engine.requests import RequestKeys
from jobyard.engine.timers import JobTimers
from jobyard.engine.timing import (
    EXPIRY_TIMER,
    EXTENDABLE,
    START_TIMER,
    ceil_millis,
    expiry,
    extension,
    initial_status,
    not_before,
    whole_millis,
)
from jobyard.engine.uploads import place_in_workdir
from jobyard.logs import JobLayout, LogHub
from jobyard.runtime.base import ExitInfo, Handle, LaunchRequest, Runtime
from jobyard.store.base import JobQuery, Store, find_job
from jobyard.store.sealing import SecretBox

LOCAL_BACKEND = "local"  # the one backend that gives jobs volumes, runtimes and networks
log = logging.getLogger("jobyard.engine")

STOPPED_EXIT_CODE = -1  # the seed reports stopped jobs with exit code -1
STOP_WAIT_EXTRA_SECONDS = 5.0


@dataclasses.dataclass(frozen=True, slots=True)
class EngineConfig:
    default_max_cpu: int = 100
    default_max_memory: int = 512
    default_max_iobps: int = 0
    default_max_pids: int = 1024
    default_max_disk: int = 0  # MB; 0 = unlimited
    stop_grace_seconds: float = 0.1
    default_time_limit_seconds: float = 0.0  # for jobs that ask for none; 0 = none
    max_upload_bytes: int = 64 << 20  # per job, all its uploads together; 0 = unbounded


class JobEngine(JobControl, JobReading):
    def __init__(
        self,
        store: Store,
        runtime: Runtime | Backends,
        layout: JobLayout,
        hub: LogHub,
        config: EngineConfig,
        attachments: Attachments | None = None,
        *,
        accounting: Accounting | None = None,
        requests: RequestKeys | None = None,
    ) -> None:
        self._store = store
        # Request ids of idempotent creates; the server passes one keyed with its key file.
        self.requests = requests or RequestKeys(SecretBox.ephemeral().fingerprint)
        self.attachments: Attachments = attachments or NoAttachments()
        self._backends = Backends.of(runtime)
        self._layout = layout
        self._hub = hub
        self._config = config
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._ended: dict[str, asyncio.Event] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._admitting = False
        self._launching: dict[str, asyncio.Task[None]] = {}
        self._timers = JobTimers()
        self.events = JobEvents()
        self._files = JobFiles(layout)
        # Jobs holding capacity (active, or QUEUED in a backend's own queue), kept current
        # by _transition and _update so admission reads no rows.
        self._active: dict[str, Job] = {}
        self._charger = None if accounting is None else Charger(
            accounting.ledger, accounting.prices, job=store.get, stop=self._out_of_credits,
            clock=accounting.clock, rate=accounting.rate,
            interval_seconds=accounting.interval_seconds, ledger_for=accounting.ledger_for,
        )  # fmt: skip

    # -- lifecycle of the engine -------------------------------------------------------

    async def start(self) -> None:
        """Adopt what an earlier server left behind, then admit queued jobs."""
        held = self._store.list(ACTIVE) + [
            job for job in self._store.list([Status.QUEUED]) if job.backend_id
        ]
        for job in held:
            self._active[job.id] = job
            await self._reconcile(job)
        for job in self._store.list([Status.SCHEDULED]):
            self._arm_start(job)
        if self._charger is not None:
            # Re-armed from the ledger; units that started while no server ran are charged.
            for job in self._store.list([Status.RUNNING]):
                self._charger.observe(job)
        await self._admit()
        await asyncio.gather(*self._launching.values())

    async def close(self) -> None:
        """Stop watching; running jobs keep running and are adopted on the next start."""
        await self._timers.close()
        if self._charger is not None:
            await self._charger.close()
        for task in self._watchers.values():
            task.cancel()
        await asyncio.gather(*self._watchers.values(), return_exceptions=True)
        self._watchers.clear()
        for runtime in self._backends:
            await runtime.close()

    @property
    def charger(self) -> Charger | None:
        """What charges running jobs (None: this server charges nothing)."""
        return self._charger

    @property
    def watching(self) -> int:
        """How many started jobs are being watched (0 once every job has ended)."""
        return len(self._watchers)

    # -- commands ------------------------------------------------------------------------

    def with_defaults(self, spec: JobSpec) -> JobSpec:
        """Fill limits the caller left at 0 ("not given") from the server defaults."""
        res, cfg = spec.resources, self._config
        filled = Resources(
            max_cpu=res.max_cpu or cfg.default_max_cpu,
            cpu_cores=res.cpu_cores,
            max_memory=res.max_memory or cfg.default_max_memory,
            max_iobps=res.max_iobps or cfg.default_max_iobps,
            max_pids=res.max_pids or cfg.default_max_pids,
            max_disk=res.max_disk or cfg.default_max_disk,
        )
        time_limit = spec.time_limit_seconds or cfg.default_time_limit_seconds
        return dataclasses.replace(spec, resources=filled, time_limit_seconds=time_limit)

    def prepare(self, spec: JobSpec, caller: Identity | None = None) -> JobSpec:
        """The spec with server defaults filled in (its backend too), validated against
        what that backend can run and against the volumes and runtimes ``caller`` may use
        (None: not scoped)."""
        spec = self.with_defaults(spec)
        spec.validate()
        spec = dataclasses.replace(spec, backend=self._backends.resolve(spec.backend))
        self._backends[spec.backend].capacity.check(spec.resources)
        if spec.backend != LOCAL_BACKEND and attaches(spec):
            # TODO: bind volumes and runtimes in Slurm steps (a shared dir per volume) once
            # the slurm backend passes LaunchRequest.binds to its mounts view.
            raise InvalidArgument(
                f"backend {spec.backend} cannot attach volumes, runtimes or networks: run the "
                "job on the local backend"
            )
        self.attachments.check(spec, caller)
        return spec

    def _runtime(self, job: Job) -> Runtime:
        return self._backends[job.backend]

    async def submit(
        self,
        caller: Identity,
        spec: JobSpec,
        *,
        workflow_id: str = "",
        uploads: Sequence[Upload] = (),
        request_key: str = "",
        job_id: str = "",
    ) -> Job:
        """Validate, persist (durably) and admit a job owned by ``caller`` (and filed under
        its project); returns it as it stands then. ``uploads`` are placed in the job's work
        directory before anything can start it.

        With a ``request_key`` (the client's idempotency key), a retry of the same request
        by the same owner is answered with the job the first one created. ``job_id`` is the
        new job's id when the caller must record it before the job can change (the
        provider face maps UCloud/Core's id to it first); "" = a new one.
        """
        if job_id and not is_job_id(job_id):
            raise InvalidArgument(f"invalid job id {job_id[:64]!r}: a UUID is required")
        request = self.requests.key(
            caller.name, request_key, "run_job", {"spec": spec, "uploads": uploads}
        )
        if request is not None:
            claimed = self._store.claimed(caller.name, request.key, utcnow())
            if claimed is not None:
                return self._store.get(replayed(request, claimed, "job"))
        files = self.check_uploads(uploads)
        spec = dataclasses.replace(spec, uploads=top_level(files)) if files else spec
        # A workflow's jobs had their volumes and runtimes checked when it was accepted.
        spec = self.prepare(spec, None if workflow_id else caller)
        spec = dataclasses.replace(spec, schedule=ceil_millis(spec.schedule))
        if self._charger is not None:
            await self._charger.admit(caller.name, caller.project, spec)  # PaymentRequired
        now = whole_millis(utcnow())
        status, message = initial_status(spec, now)
        job = Job(
            id=job_id or new_job_id(),
            owner=caller.name,
            spec=spec,
            status=status,
            created_at=now,
            backend=spec.backend,
            message=message,
            workflow_id=workflow_id,
            project=caller.project,
        )
        self._hub.limits.reserve.check_room()  # a full data disk takes no new job
        try:
            # The output files exist from the start: a follower of a queued job waits on them.
            self._layout.create_job_dir(job.id, spec.replicas)
            if files:
                place_in_workdir(self._layout, job.id, files)
            self._store.create(job, request)
        except DuplicateRequest as taken:  # a retry that raced its first attempt
            self._layout.remove(job.id)
            assert request is not None
            return self._store.get(replayed(request, taken.claimed, "job"))
        except BaseException as exc:
            self._layout.remove(job.id)  # nothing half-created stays behind
            if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                raise ResourceExhausted("the data disk is full: cannot create the job") from exc
            raise
        self.events.publish(job)
        log.info("job accepted | jobId=%s owner=%s project=%s status=%s",
                 job.id, job.owner, job.project, job.status)  # fmt: skip
        if job.status is Status.SCHEDULED:
            self._arm_start(job)
        await self._admit()
        launch = self._launching.get(job.id)
        if launch is not None:  # admitted now: answer once it runs, as the seed does
            await asyncio.shield(launch)  # a caller gone away does not cancel the launch
        # Answered means durable: the job, and its launch (RUNNING with its handle), so that
        # a restart adopts what the answer said runs.
        await self._store.committed()
        return self._store.get(job.id)

    @property
    def layout(self) -> JobLayout:
        return self._layout

    def check_uploads(self, uploads: Sequence[Upload]) -> tuple[Upload, ...]:
        """Uploads with normalized paths, within the server's bounds (else InvalidArgument)."""
        return validate_uploads(uploads, self._config.max_upload_bytes)

    def job(self, caller: Identity, ref: str) -> Job:
        """The job a full id or unique prefix names, if ``caller`` may see it (else NotFound,
        as for an absent job; other owners' jobs never make a prefix ambiguous)."""
        return find_job(self._store, ref, scope(caller))

    def jobs(self, caller: Identity) -> list[Job]:
        """Every job ``caller`` may see, oldest first."""
        limits = scope(caller)
        return [job for job in self._store.list() if limits is None or limits.admits(job)]

    async def stop(self, caller: Identity, ref: str) -> Job:
        """Stop a job: SIGTERM, grace, SIGKILL; returns once it is STOPPED (or timed out)."""
        job = self.job_to_change(caller, ref)
        if job.status in (Status.QUEUED, Status.SCHEDULED) and not job.backend_id:
            job = self._finish(job.id, Status.STOPPED, "stopped before it started",
                               reason=TerminationReason.USER_STOP,
                               exit_code=STOPPED_EXIT_CODE)  # fmt: skip
            await self._store.committed()
            return job
        if job.status.terminal:
            raise job_not_running(job.id, job.status.value)
        if job.status is not Status.STOPPING:
            job = self._transition(
                job.id, Status.STOPPING, "stop requested: signals sent",
                reason=TerminationReason.USER_STOP,
            )  # fmt: skip
            log.info("job stopping | jobId=%s", job.id)
            await self._signal_stop(job)
        job = await self._wait_ended(
            job.id, self._config.stop_grace_seconds + STOP_WAIT_EXTRA_SECONDS
        )
        await self._store.committed()
        return job

    async def _signal_stop(self, job: Job) -> None:
        if job.backend_id:
            await self._runtime(job).stop(
                job.id, Handle(job.backend_id), self._config.stop_grace_seconds
            )

    async def _wait_ended(self, job_id: str, timeout: float) -> Job:
        event = self._ended.setdefault(job_id, asyncio.Event())
        if not self._store.get(job_id).status.terminal:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        return self._store.get(job_id)

    @property
    def logs(self) -> LogHub:
        """Job output: cursors, followers, size limits and their settings."""
        return self._hub

    def _on_output_limit(self, job_id: str, why: str, reason: TerminationReason) -> None:
        """The job cannot go on (``why``: its output or disk limit, or a full disk): record
        that at once, then stop the job as a user's stop does, with ``reason``."""
        try:
            job = self._transition(job_id, Status.STOPPING, f"{why}: signals sent",
                                   reason=reason)  # fmt: skip
        except StaleTransition:
            return  # it ended, or is being stopped, meanwhile
        log.warning("job output stopped | jobId=%s why=%s", job_id, why)
        task = asyncio.create_task(self._signal_stop(job), name=f"limit-{job_id}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- the only ways the engine changes a job -----------------------------------------

    def _transition(self, job_id: str, new: Status, message: str, **fields: Any) -> Job:
        job = self._recorded(self._store.transition, job_id, new, message, **fields)
        self._hold(job)
        self.events.publish(job)
        if self._charger is not None:
            self._charger.observe(job)
        return job

    def _update(self, job_id: str, **fields: Any) -> Job:
        job = self._recorded(self._store.update, job_id, **fields)
        self._hold(job)
        self.events.publish(job)
        return job

    def _recorded(self, write: Callable[..., Job], *args: Any, **fields: Any) -> Job:
        """``write(*args, **fields)``; on a full data disk once more, after releasing the
        disk reserve that is kept for this: a job's end must be recorded."""
        try:
            return write(*args, **fields)
        except DataDiskFull:
            if not self._hub.limits.reserve.release():
                raise
            log.warning("data disk full: released the reserve to record a change")
            return write(*args, **fields)

    def _hold(self, job: Job) -> None:
        """Keep ``_active`` current: the jobs a backend holds."""
        if job.status.active or (job.status is Status.QUEUED and job.backend_id):
            self._active[job.id] = job
        else:
            self._active.pop(job.id, None)

    # -- admission and launch --------------------------------------------------------

    async def _admit(self) -> None:
        """Start queued jobs, oldest first, while there is capacity.

        A job for a backend that runs it at once is INITIALIZING (so it holds capacity)
        before the next one is looked at, and launches in a task of its own; a hand-over
        to a backend's own queue is awaited (the job is QUEUED until it has its handle).
        """
        if self._admitting:
            return  # the running admission loop will see the new job
        self._admitting = True
        try:
            while (job := self._next_admissible()) is not None:
                await self._launch(job)
        finally:
            self._admitting = False

    def _next_admissible(self) -> Job | None:
        """The oldest waiting job whose backend has room for it; per backend, nothing
        overtakes that backend's oldest waiting job."""
        in_queues = sum(1 for j in self._active.values() if j.status is Status.QUEUED)
        # One backend: its oldest waiting job decides (past those in the backend's queue).
        limit = in_queues + 1 if len(self._backends) == 1 else None
        blocked: set[str] = set()
        for job in self._store.list([Status.QUEUED], limit=limit):
            if job.backend_id or job.backend in blocked:
                continue
            held = [j for j in self._active.values() if j.backend == job.backend]
            if job.backend not in self._backend_names or self._runtime(job).capacity.fits(
                held, job
            ):
                return job
            blocked.add(job.backend)
            if len(blocked) == len(self._backends):
                return None
        return None

    @property
    def _backend_names(self) -> set[str]:
        return {runtime.name for runtime in self._backends}

    async def _launch(self, job: Job) -> None:
        try:
            runtime = self._runtime(job)
        except InvalidArgument as exc:  # a job of a backend this server no longer has
            self._finish(job.id, Status.FAILED, f"launch failed: {exc}",
                         reason=TerminationReason.LAUNCH_ERROR)  # fmt: skip
            return
        if runtime.queues:
            await self._hand_over(runtime, job)
            await asyncio.sleep(0)  # let RPCs and exits in between hand-overs
            return
        job = self._transition(job.id, Status.INITIALIZING, "setting up isolation and resources")
        task = asyncio.create_task(self._run(runtime, job), name=f"launch-{job.id}")
        self._launching[job.id] = task
        task.add_done_callback(functools.partial(self._launched, job.id))

    def _launched(self, job_id: str, _: asyncio.Task[None]) -> None:
        self._launching.pop(job_id, None)

    async def _durable_before_start(self, job: Job) -> bool:
        """Wait until the job's record is committed before its backend starts anything: a
        restart then knows of whatever may have been started (see _reconcile). False when
        the job ended meanwhile (stopped, or the commit failed)."""
        try:
            await self._store.committed()
        except JobyardError as exc:
            message = f"internal error while launching: {exc}"
            self._launch_failed(job.id, message, TerminationReason.INTERNAL_ERROR)
            return False
        current = self._store.get(job.id)
        if current.status is Status.STOPPING:  # stopped while waiting
            self._finish(job.id, Status.STOPPED, "stopped before it started",
                         exit_code=STOPPED_EXIT_CODE)  # fmt: skip
            return False
        return not current.status.terminal

    async def _run(self, runtime: Runtime, job: Job) -> None:
        """The launch of one INITIALIZING job, in a task of its own."""
        if not await self._durable_before_start(job):
            return
        handle = await self._start(runtime, job)
        if handle is None:
            return
        try:
            # The handle and RUNNING in one durable commit (each commit is an fsync).
            job = self._to_running(job.id, backend_id=handle.backend_id)
            log.info("job started | jobId=%s backendId=%s command=%s",
                     job.id, handle.backend_id, shortened(repr(job.command_line)))  # fmt: skip
        except StaleTransition:  # a stop arrived while launching
            job = self._update(job.id, backend_id=handle.backend_id)
            if job.status is Status.STOPPING:
                await self._signal_stop(job)
        self._watch(job.id, runtime, handle)

    async def _hand_over(self, runtime: Runtime, job: Job) -> None:
        """Give the job to a backend that queues it: it stays QUEUED, with its handle, until
        the backend reports it running (the watcher's :meth:`Runtime.running`)."""
        if not await self._durable_before_start(job):
            return
        handle = await self._start(runtime, job)
        if handle is None:
            return
        message = f"waiting in the {runtime.name} queue (backend id {handle.backend_id})"
        try:
            job = self._store.annotate(job.id, message, only_in=[Status.QUEUED],
                                       backend_id=handle.backend_id)  # fmt: skip
        except StaleTransition:  # stopped while it was being handed over
            job = self._update(job.id, backend_id=handle.backend_id)
            await runtime.stop(job.id, handle, self._config.stop_grace_seconds)
            await self._cleanup(runtime, job.id, handle)
            return
        self._hold(job)
        self.events.publish(job)
        log.info("job handed over | jobId=%s backend=%s backendId=%s",
                 job.id, runtime.name, handle.backend_id)  # fmt: skip
        self._watch(job.id, runtime, handle)

    async def _start(self, runtime: Runtime, job: Job) -> Handle | None:
        """``runtime.start`` for ``job``; None when it failed (the job has ended then)."""
        await asyncio.to_thread(self._layout.create_job_dir, job.id, job.spec.replicas)
        try:
            attached = await self.attachments.attach(job.id, job.spec)
        except JobyardError as exc:  # a volume or runtime removed while the job waited
            await self.attachments.release(job.id)
            self._launch_failed(job.id, f"launch failed: {exc}", TerminationReason.LAUNCH_ERROR)
            return None
        request = LaunchRequest(
            job_id=job.id,
            spec=job.spec,
            output_path=self._layout.output(job.id),
            state_dir=self._layout.state_dir(job.id),
            workdir=self._layout.workdir(job.id),
            rank_outputs=tuple(
                self._layout.output(job.id, rank) for rank in range(1, job.spec.replicas)
            ),
            owner=job.owner,
            binds=attached.binds,
            path_prefix=attached.path_prefix,
            netns=attached.netns,
        )
        try:
            return await runtime.start(request)
        except LaunchError as exc:
            await self.attachments.release(job.id)
            self._launch_failed(job.id, f"launch failed: {exc}", TerminationReason.LAUNCH_ERROR)
        except Exception as exc:  # a bug or an unexpected OS error: never leave it hanging
            log.exception("job launch crashed | jobId=%s", job.id)
            await self.attachments.release(job.id)
            message = f"internal error while launching: {exc}"
            self._launch_failed(job.id, message, TerminationReason.INTERNAL_ERROR)
        return None

    def _launch_failed(self, job_id: str, message: str, reason: TerminationReason) -> None:
        status = self._store.get(job_id).status
        if status.terminal:
            return  # stopped while it was being handed to a queue
        if status is Status.STOPPING:
            # A stop arrived while launching: the user's stop wins; the launch error is kept
            # in the history message.
            self._finish(job_id, Status.STOPPED, f"stopped by user request ({message})",
                         exit_code=STOPPED_EXIT_CODE)  # fmt: skip
            return
        self._finish(job_id, Status.FAILED, message, reason=reason)

    def _watch(self, job_id: str, runtime: Runtime, handle: Handle) -> None:
        watcher = self._watch_exit(job_id, runtime, handle)
        task = asyncio.create_task(watcher, name=f"watch-{job_id}")
        self._watchers[job_id] = task
        job = self._active.get(job_id)
        disk_mb = job.spec.resources.max_disk if job is not None else 0
        self._hub.guard(job_id, self._on_output_limit, disk_mb * 1024 * 1024)

    async def _watch_start(self, job_id: str, runtime: Runtime, handle: Handle) -> None:
        """A job not yet seen running: mark it RUNNING once its backend reports it so."""
        started_at = await runtime.running(job_id, handle)
        if started_at is None:
            return  # it ended first; wait() tells how
        with contextlib.suppress(StaleTransition):  # being stopped, or ended meanwhile
            job = self._to_running(job_id, started_at=started_at)
            log.info("job started | jobId=%s backendId=%s command=%s",
                     job_id, handle.backend_id, shortened(repr(job.command_line)))  # fmt: skip

    async def _watch_exit(self, job_id: str, runtime: Runtime, handle: Handle) -> None:
        try:
            if self._store.get(job_id).status in (Status.QUEUED, Status.INITIALIZING):
                await self._watch_start(job_id, runtime, handle)
            info = await runtime.wait(job_id, handle)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("waiting for job failed | jobId=%s", job_id)
            info = ExitInfo(exit_code=None, lost=True, message=f"runtime error: {exc}")
        usage = await self._final_usage(runtime, job_id, handle)
        try:
            # Release first, so that a terminal status means the job's resources are gone.
            try:
                await self._cleanup(runtime, job_id, handle)
            except Exception:
                log.exception("cleanup failed | jobId=%s", job_id)
            self._hub.settle(job_id)
            self._on_exit(job_id, info, usage)
        finally:
            self._watchers.pop(job_id, None)
        await self._admit()

    def _on_exit(self, job_id: str, info: ExitInfo, usage: Usage | None = None) -> None:
        job = self._store.get(job_id)
        last_event = job.updates[-1].timestamp if job.updates else None
        ended_at = not_before(info.ended_at or utcnow(), job.started_at, last_event)
        # What it used, and an open SUSPENDED period closed (a stop thaws a frozen job).
        final = {"usage": usage, **suspension_closed(job, ended_at)}
        if job.status is Status.STOPPING:
            self._finish(job_id, Status.STOPPED, _stopped_message(job.reason),
                         exit_code=STOPPED_EXIT_CODE, ended_at=ended_at, **final)  # fmt: skip
            return
        status, fields, message = _outcome(info)
        if not can_transition(job.status, status):
            # The backend reported an end of a job it never reported running (a start
            # too short to be seen): it did run, so record that first, then its end.
            log.warning("job ended before its start was seen | jobId=%s", job_id)
            self._to_running(job_id, started_at=ended_at)
        self._finish(job_id, status, message, ended_at=ended_at, **fields, **final)

    def _finish(self, job_id: str, status: Status, message: str, **fields: Any) -> Job:
        fields.setdefault("ended_at", utcnow())
        job = self._transition(job_id, status, message, **fields)
        self._timers.cancel(job_id)
        log.info("job ended | jobId=%s status=%s reason=%s exitCode=%s",
                 job_id, job.status, job.reason, job.exit_code)  # fmt: skip
        self._hub.job_ended(job_id)
        event = self._ended.pop(job_id, None)
        if event is not None:
            event.set()
        return job

    async def _reconcile(self, job: Job) -> None:
        """Bring a job an earlier server left active back under watch, or end it truthfully."""
        try:
            runtime = self._runtime(job)
        except InvalidArgument as exc:
            self._finish(job.id, Status.FAILED if job.status is not Status.STOPPING
                         else Status.STOPPED, f"cannot adopt the job: {exc}",
                         reason=TerminationReason.LOST)  # fmt: skip
            return
        if not job.backend_id:
            # The server died between launching and recording the launch: what the runtime
            # may have started has no handle, and would run on unwatched and never be cleaned.
            await self._release_unrecorded(runtime, job.id)
            self._finish(job.id, Status.FAILED if job.status is not Status.STOPPING
                         else Status.STOPPED,
                         "the server restarted while the job was being launched",
                         reason=TerminationReason.LOST)  # fmt: skip
            return
        handle = Handle(job.backend_id)
        log.info("job adopted | jobId=%s status=%s backendId=%s",
                 job.id, job.status, job.backend_id)  # fmt: skip
        # An INITIALIZING or QUEUED job becomes RUNNING when its backend says so (watcher).
        if job.status is Status.STOPPING:
            await self._signal_stop(job)
        else:
            self._arm_expiry(job)
        self._watch(job.id, runtime, handle)

    async def _cleanup(self, runtime: Runtime, job_id: str, handle: Handle) -> None:
        """The runtime's cleanup, then what the job attached (its network namespace)."""
        try:
            await runtime.cleanup(job_id, handle)
        finally:
            await self.attachments.release(job_id)

    async def _release_unrecorded(self, runtime: Runtime, job_id: str) -> None:
        try:
            await self._cleanup(runtime, job_id, Handle(""))
        except Exception:
            log.exception("cleanup of an unrecorded launch failed | jobId=%s", job_id)

    # -- time: scheduled starts, time limits, extensions ----------------------------------

    def _to_running(self, job_id: str, **fields: Any) -> Job:
        """INITIALIZING (or QUEUED in a backend's queue) -> RUNNING, with the expiry
        (re-read: an extend may have come in)."""
        fields.setdefault("started_at", utcnow())
        expires_at = expiry(self._store.get(job_id).spec, fields["started_at"])
        job = self._transition(job_id, Status.RUNNING, "running",
                               expires_at=expires_at, **fields)  # fmt: skip
        self._arm_expiry(job)
        return job

    def _arm_expiry(self, job: Job) -> None:
        if job.expires_at is not None:
            self._timers.arm(job.id, EXPIRY_TIMER, job.expires_at, self._expire)

    def _arm_start(self, job: Job) -> None:
        if job.spec.schedule is not None:
            self._timers.arm(job.id, START_TIMER, job.spec.schedule, self._start_scheduled)

    async def _start_scheduled(self, job_id: str) -> None:
        with contextlib.suppress(StaleTransition):  # stopped (or deleted) meanwhile
            self._transition(job_id, Status.QUEUED, "waiting in the queue")
            log.info("job due | jobId=%s", job_id)
        await self._admit()

    async def _expire(self, job_id: str) -> None:
        """The time limit is reached: stop the job as a user's stop does, reason TIME_LIMIT."""
        await self._terminate(job_id, TerminationReason.TIME_LIMIT,
                              "time limit reached: signals sent")  # fmt: skip

    async def _out_of_credits(self, job_id: str) -> None:
        """Its next unit cannot be paid: stop the job at once, reason NO_CREDITS."""
        await self._terminate(job_id, TerminationReason.NO_CREDITS, NO_CREDITS_MESSAGE)

    async def _terminate(self, job_id: str, reason: TerminationReason, message: str) -> None:
        try:
            job = self._transition(job_id, Status.STOPPING, message, reason=reason)
        except StaleTransition:
            return  # it ended, or is being stopped, meanwhile
        log.info("job terminated | jobId=%s reason=%s", job_id, reason)
        await self._signal_stop(job)

    async def extend(self, caller: Identity, ref: str, seconds: float) -> Job:
        """Give an unfinished job ``seconds`` more wall time (UCloud extend)."""
        job = self.job_to_change(caller, ref)
        fields, message = extension(job, seconds)
        if job.backend_id:  # the backend's own limit moves first (Slurm's TimeLimit)
            await self._runtime(job).extend(
                job.id, Handle(job.backend_id), fields["time_limit_seconds"]
            )
        try:
            job = self._store.annotate(job.id, message, only_in=EXTENDABLE, **fields)
        except StaleTransition:
            job = self._store.get(job.id)
            raise job_not_running(job.id, job.status.value) from None
        self.events.publish(job)
        self._arm_expiry(job)
        log.info("job extended | jobId=%s seconds=%g expiresAt=%s",
                 job.id, seconds, job.expires_at)  # fmt: skip
        await self._store.committed()
        return job

    # -- listing and deleting ----------------------------------------------------------------

    def query(self, caller: Identity, query: JobQuery) -> tuple[list[Job], str]:
        """Jobs matching ``query`` that ``caller`` may see, newest first, and the next
        page's token ("" at the end)."""
        return self._store.query(dataclasses.replace(query, scope=scope(caller)))

    async def delete(self, caller: Identity, ref: str) -> Job:
        """Remove a finished job: its record, history, output and work directory."""
        job = self.job_to_change(caller, ref)
        if not job.status.terminal:
            raise FailedPrecondition(
                f"job is not finished: {job.id} (current status: {job.status.value})"
            )
        self._store.delete(job.id)  # first: a half-deleted job never looks alive
        await self._store.committed()
        await asyncio.to_thread(self._layout.remove, job.id)  # may be a large tree
        log.info("job deleted | jobId=%s", job.id)
        return job


def _stopped_message(reason: TerminationReason | None) -> str:
    if reason is TerminationReason.OUTPUT_LIMIT:
        return "stopped: output limit reached"
    if reason is TerminationReason.DISK_LIMIT:
        return "stopped: disk limit reached"
    if reason is TerminationReason.TIME_LIMIT:
        return "stopped: time limit reached"
    if reason is TerminationReason.NO_CREDITS:
        return NO_CREDITS_MESSAGE
    return "stopped by user request"


_ExitOutcome = tuple[Status, dict[str, Any], str]


def _outcome(info: ExitInfo) -> _ExitOutcome:
    if info.lost:
        return (Status.FAILED, {"reason": TerminationReason.LOST},
                info.message or "the runtime no longer knows the job")  # fmt: skip
    if info.stopped is not None:
        return (Status.STOPPED, {"reason": info.stopped, "exit_code": STOPPED_EXIT_CODE},
                info.message or _stopped_message(info.stopped))  # fmt: skip
    if info.launch_failed:
        return (Status.FAILED, {"reason": TerminationReason.LAUNCH_ERROR,
                                "exit_code": info.exit_code},
                info.message or "launch failed")  # fmt: skip
    if info.oom_killed:
        return (Status.FAILED, {"reason": TerminationReason.OOM_KILLED,
                                "exit_code": info.exit_code},
                info.message or "killed: out of memory")  # fmt: skip
    code = info.exit_code
    fields: dict[str, Any] = {"reason": TerminationReason.EXITED, "exit_code": code}
    if code == 0:
        return Status.COMPLETED, fields, "completed"
    detail = f"killed by signal {info.signal}" if info.signal else f"exit code {code}"
    return Status.FAILED, fields, info.message or f"failed: {detail}"


__all__ = ["EngineConfig", "JobEngine"]
