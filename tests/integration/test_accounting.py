"""Products, invocation and charging on a real server: real runtime, real SQLite ledger.

The server charges at 60 seconds of running time per second of wall time (``charge_rate``),
so that a priced minute passes in a second; everything else is as in production.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobyard.accounting.sqlite import SQLiteLedger
from jobyard.client import Client
from jobyard.domain.access import Identity, Role
from jobyard.domain.errors import PaymentRequired
from jobyard.domain.jobs import Job, JobSpec
from jobyard.domain.status import Status, TerminationReason
from jobyard.engine.accounting import NO_CREDITS_MESSAGE
from jobyard.ucloud import render
from tests.conftest import root_problem
from tests.integration.conftest import ServerThread
from tests.unit.ucloud_samples import application, product

WAIT_SECONDS = 30.0
RATE = 60.0  # a charged minute per wall second
ALICE = Identity("alice", Role.USER)
ECHO_APP = application(
    [{"type": "word", "word": "/bin/echo"}, {"type": "var", "variableNames": ["value"]}],
    [{"type": "text", "name": "value"}],
    name="echo",
)


@pytest.fixture
def priced(tmp_path: Path, certs_dir: Path) -> Iterator[ServerThread]:
    if root_problem():
        pytest.skip(root_problem() or "")
    config = tmp_path / "config.yml"
    ucloud = {"providerId": "example", "products": [product(pricePerUnit=1000)],
              "applications": [ECHO_APP]}  # fmt: skip
    config.write_text(yaml.safe_dump({"ucloud": ucloud}))
    thread = ServerThread(tmp_path / "data", certs_dir, config_file=config, charge_rate=RATE)
    thread.start()
    yield thread
    thread.close()


def ledger(server: ServerThread) -> SQLiteLedger:
    assert server.running is not None and server.running.ledger is not None
    return server.running.ledger


def submit(server: ServerThread, spec: JobSpec) -> Job:
    assert server.running is not None
    job: Job = server.call(server.running.engine.submit(ALICE, spec))
    return job


def on_product(server: ServerThread, command: str, *args: str, **changes: Any) -> JobSpec:
    assert server.running is not None
    p = server.running.catalog.product("example-compute-1", "example-compute")
    return JobSpec(command=command, args=args, resources=p.resources(), product=p.ref, **changes)


def wait_ended(server: ServerThread, job_id: str) -> Job:
    async def ended() -> Job:
        assert server.running is not None
        engine = server.running.engine
        async with asyncio.timeout(WAIT_SECONDS):
            while not (job := engine.job(ALICE, job_id)).status.terminal:
                await asyncio.sleep(0.02)
        return job

    result: Job = server.call(ended(), WAIT_SECONDS + 5)
    return result


def test_a_job_whose_next_unit_cannot_be_paid_is_stopped_no_credits(priced: ServerThread) -> None:
    ledger(priced).deposit("alice", "", 1000)  # exactly the first minute
    job = submit(priced, on_product(priced, "sleep", "300"))
    ended = wait_ended(priced, job.id)
    assert (ended.status, ended.reason) == (Status.STOPPED, TerminationReason.NO_CREDITS)
    assert ended.updates[-1].message == NO_CREDITS_MESSAGE
    assert ended.spec.resources.max_cpu == 100 and ended.spec.resources.max_memory == 2048
    charges = ledger(priced).charges(job.id)
    assert [r.charge.charge_id for r in charges] == [f"{job.id}-units-0-0"]
    assert ledger(priced).wallet("alice").balance == 0
    assert ledger(priced).wallet("alice").spent == 1000


def test_a_create_that_cannot_pay_its_first_unit_makes_no_job(priced: ServerThread) -> None:
    ledger(priced).deposit("alice", "", 1999)
    with pytest.raises(PaymentRequired, match="costs 2000 credits"):
        submit(priced, on_product(priced, "true", replicas=2))
    assert priced.running is not None
    assert priced.running.engine.jobs(ALICE) == []
    assert ledger(priced).wallet("alice").balance == 1999


def test_rendered_argv_reaches_the_program_literally(priced: ServerThread, certs_dir: Path) -> None:
    assert priced.running is not None
    hostile = "$(id); rm -rf / `touch /tmp/pwned` && echo 'x'"
    app = priced.running.catalog.application("echo", "1.0.0")
    argv = render(app, {"value": {"type": "text", "value": hostile}})
    ledger(priced).deposit("alice", "", 10_000)
    job = submit(priced, on_product(priced, argv[0], *argv[1:]))
    assert wait_ended(priced, job.id).status is Status.COMPLETED
    admin = Client(
        server=f"localhost:{priced.port}",
        cert=str(certs_dir / "admin-client-cert.pem"),
        key=str(certs_dir / "admin-client-key.pem"),
        ca=str(certs_dir / "ca-cert.pem"),
    )
    try:
        assert b"".join(admin.logs(job.id)).decode() == hostile + "\n"
    finally:
        admin.close()
    assert not Path("/tmp/pwned").exists()


def test_charging_goes_on_across_a_server_restart_without_double_or_missed_units(
    priced: ServerThread,
) -> None:
    ledger(priced).deposit("alice", "", 3000)  # three minutes
    job = submit(priced, on_product(priced, "sleep", "300"))
    charged = ledger(priced).charges
    priced.call(_until(lambda: len(charged(job.id)) == 1))
    priced.stop()  # the job runs on, unwatched and uncharged, while no server is up
    priced.call(asyncio.sleep(1.5))  # 90 s of charged time: unit 1 starts meanwhile
    priced.start()
    ended = wait_ended(priced, job.id)
    assert (ended.status, ended.reason) == (Status.STOPPED, TerminationReason.NO_CREDITS)
    ranges = [(r.charge.first_unit, r.charge.last_unit) for r in ledger(priced).charges(job.id)]
    # Every unit 0..2 charged exactly once (how they group depends on when the server was
    # back), and unit 3, which the wallet could not pay, not at all.
    units = [u for first, last in ranges for u in range(first, last + 1)]
    assert units == [0, 1, 2]
    assert ledger(priced).wallet("alice").balance == 0


async def _until(condition: Any) -> None:
    async with asyncio.timeout(WAIT_SECONDS):
        while not condition():
            await asyncio.sleep(0.01)
