"""Bad input cannot stall the server: alias bombs, oversize workflows, huge names.

Real server, real mTLS, real SQLite, real local runtime; the SDK as a user calls it.
"""

from __future__ import annotations

import threading
import time

import pytest

from jobyard.client import Client
from jobyard.domain.errors import InvalidArgument
from tests.integration.conftest import ClientFactory
from tests.unit.test_workflow_bounds import alias_bomb, many_jobs

MAX_QUOTED_CHARS = 200  # no error repeats more of the input than about this
BOMBS = 3  # one after another: the other client is served all along


def test_an_alias_bomb_is_refused_while_other_clients_are_answered(
    admin: Client, client_for: ClientFactory
) -> None:
    other = client_for("admin")
    other.jobs()  # connected before the bomb goes off
    latencies: list[float] = []
    bomb_done = threading.Event()
    outcome: list[BaseException] = []

    def throw_bomb() -> None:
        try:
            for _ in range(BOMBS):
                try:
                    admin.run_workflow(alias_bomb())
                except BaseException as exc:
                    outcome.append(exc)
        finally:
            bomb_done.set()

    thrower = threading.Thread(target=throw_bomb)
    thrower.start()
    while not bomb_done.is_set():
        started = time.perf_counter()
        other.jobs()  # every call must get its answer while the bomb is being refused
        if not bomb_done.is_set():
            latencies.append(time.perf_counter() - started)
    thrower.join()

    assert len(outcome) == BOMBS
    for refused in outcome:
        assert isinstance(refused, InvalidArgument)
        assert "aliases expand past the limit" in str(refused)
    assert latencies, "no call of the other client completed while the bomb was processed"
    print(f"other client during the bomb: {len(latencies)} calls, "
          f"max {max(latencies) * 1000:.1f} ms")  # fmt: skip
    assert admin.workflows() == []


def test_a_workflow_over_one_megabyte_is_invalid_argument(admin: Client) -> None:
    text = many_jobs(1) + "# padding\n" * 110_000  # 1.1 MB, above the default limit
    with pytest.raises(InvalidArgument, match="exceeds the limit of 1048576 bytes") as exc:
        admin.run_workflow(text)
    assert len(str(exc.value)) < 300
    assert admin.workflows() == []


def test_a_workflow_over_five_thousand_jobs_is_invalid_argument(admin: Client) -> None:
    with pytest.raises(InvalidArgument, match="5001 jobs exceeds the limit of 5000"):
        admin.run_workflow(many_jobs(5001))
    assert admin.workflows() == [] and admin.jobs() == []


def test_a_100_kb_job_name_is_invalid_argument_with_a_short_message(admin: Client) -> None:
    name = "x" * 100_000
    with pytest.raises(InvalidArgument) as exc:
        admin.submit("true", name=name)
    message = str(exc.value)
    assert message.startswith("invalid name 'xxx")
    assert "at most 128 characters" in message
    assert "x" * (MAX_QUOTED_CHARS + 1) not in message
    assert admin.jobs() == []


def test_a_huge_workflow_job_name_comes_back_short(admin: Client) -> None:
    with pytest.raises(InvalidArgument, match="invalid workflow: job name") as exc:
        admin.run_workflow("jobs:\n  ? " + "y" * 100_000 + "\n  : {command: x}\n")
    assert "y" * (MAX_QUOTED_CHARS + 1) not in str(exc.value)
