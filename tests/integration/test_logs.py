"""Job output through the public API: offsets, tails, followers at any moment, many
followers, a stalled follower; always compared with the file the job wrote."""

from __future__ import annotations

import hashlib
import random
import resource
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from jobyard.api.gen import jobyard_v1_pb2 as v1
from jobyard.api.gen import jobyard_v1_pb2_grpc as v1_grpc
from jobyard.client import Client, LogChunk
from jobyard.domain.errors import InvalidArgument, NotFound
from tests.integration.conftest import ClientFactory, ServerThread

WAIT_SECONDS = 60


def output_of(server: ServerThread, job_id: str) -> bytes:
    """The file the job's processes wrote."""
    return (server.data_dir / "jobs" / job_id / "output.log").read_bytes()


def joined(chunks: list[LogChunk], start: int = 0) -> bytes:
    """The chunks' bytes, checking each starts where the previous one ended."""
    position = start
    for chunk in chunks:
        assert chunk.offset == position, f"chunk at {chunk.offset}, expected {position}"
        position = chunk.end
    return b"".join(c.data for c in chunks)


# A job writing pseudo-random bytes (binary, partial lines) in random-sized pieces, with
# pauses, so that followers see history, live output and the seam between them.
WRITER = """
import os, random, sys, time
rng = random.Random(int(sys.argv[1]))
for i in range(int(sys.argv[2])):
    os.write(1, f"{i:05d} ".encode() + rng.randbytes(rng.randrange(1, 3000)) + b"\\n")
    if i % 7 == 0:
        time.sleep(0.01)
"""


def submit_writer(client: Client, seed: int, pieces: int) -> str:
    return client.submit("python3", ["-c", WRITER, str(seed), str(pieces)]).id


# -- reading from an offset, the last lines ------------------------------------------------


def test_chunks_carry_their_offsets_and_make_up_the_file(
    admin: Client, server: ServerThread
) -> None:
    job_id = submit_writer(admin, seed=1, pieces=300)
    admin.wait(job_id, timeout=WAIT_SECONDS)
    chunks = list(admin.read_logs(job_id))
    assert joined(chunks) == output_of(server, job_id)
    assert len(output_of(server, job_id)) > 100_000


def test_reading_from_an_offset_returns_exactly_the_rest(
    admin: Client, server: ServerThread
) -> None:
    job_id = submit_writer(admin, seed=2, pieces=100)
    admin.wait(job_id, timeout=WAIT_SECONDS)
    data = output_of(server, job_id)
    for offset in (0, 1, 4095, len(data) // 2, len(data) - 1, len(data)):
        chunks = list(admin.read_logs(job_id, offset=offset))
        assert joined(chunks, start=offset) == data[offset:]


def test_tail_gives_the_last_lines(admin: Client) -> None:
    job = admin.submit("seq", ["1", "100000"])  # 588,895 bytes: the scan crosses blocks
    admin.wait(job.id, timeout=WAIT_SECONDS)

    def tail(n: int) -> bytes:
        return b"".join(c.data for c in admin.read_logs(job.id, tail=n))

    assert tail(1) == b"100000\n"
    assert tail(3) == b"99998\n99999\n100000\n"
    lines = tail(20_000).splitlines()
    assert lines[0] == b"80001" and len(lines) == 20_000
    assert tail(10**9) == b"".join(f"{i}\n".encode() for i in range(1, 100_001))


def test_tail_of_output_without_a_final_newline(admin: Client) -> None:
    job = admin.submit("printf", ["a\\nb\\nc"])
    admin.wait(job.id, timeout=WAIT_SECONDS)
    chunks = list(admin.read_logs(job.id, tail=2))
    assert [(c.offset, c.data) for c in chunks] == [(2, b"b\nc")]


def test_tail_then_follow_of_a_job_with_no_output_yet(admin: Client) -> None:
    job = admin.submit("sh", ["-c", "sleep 0.5; echo one; echo two"])
    chunks = list(admin.read_logs(job.id, tail=5, follow=True))
    assert joined(chunks) == b"one\ntwo\n"


def test_tail_then_follow_continues_after_the_last_lines(admin: Client) -> None:
    job = admin.submit("sh", ["-c", "seq 1 5; sleep 1; seq 6 8"])
    deadline = time.monotonic() + WAIT_SECONDS
    while b"5\n" not in b"".join(c.data for c in admin.read_logs(job.id)):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    chunks = list(admin.read_logs(job.id, tail=2, follow=True))
    assert chunks[0].offset == len(b"1\n2\n3\n")
    assert joined(chunks, start=chunks[0].offset) == b"4\n5\n6\n7\n8\n"


def test_bad_cursors_are_refused_with_the_reason(admin: Client) -> None:
    job = admin.submit("echo", ["12345"])
    admin.wait(job.id, timeout=WAIT_SECONDS)
    with pytest.raises(InvalidArgument, match="offset 7 is past the end of the job's output"):
        list(admin.read_logs(job.id, offset=7))
    with pytest.raises(InvalidArgument, match="offset must not be negative"):
        list(admin.read_logs(job.id, offset=-1))
    with pytest.raises(InvalidArgument, match="tailLines must not be negative"):
        list(admin.read_logs(job.id, tail=-2))
    with pytest.raises(NotFound, match="job not found"):
        list(admin.read_logs("00000000-0000-4000-8000-000000000000"))


def test_a_viewer_may_read_logs(admin: Client, viewer: Client) -> None:
    job = admin.submit("echo", ["seen"])
    admin.wait(job.id, timeout=WAIT_SECONDS)
    assert joined(list(viewer.read_logs(job.id))) == b"seen\n"


# -- followers at random moments: history, then live, then the end, no gap, no repeat ----


class Follower(threading.Thread):
    """Follows a job through one API from the moment it is started; records the bytes."""

    def __init__(self, read: Callable[[], Iterator[bytes]]) -> None:
        super().__init__(daemon=True)
        self._read = read
        self.data = b""
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.data = b"".join(self._read())
        except BaseException as exc:
            self.error = exc


def _start_followers(client: Client, job_id: str, count: int) -> list[Follower]:
    followers = []
    for i in range(count):
        if i % 2:
            follower = Follower(lambda: client.logs(job_id, follow=True))
        else:
            follower = Follower(lambda: (c.data for c in client.read_logs(job_id, follow=True)))
        follower.start()
        followers.append(follower)
    return followers


@pytest.fixture
def one_at_a_time(tmp_path: Path, certs_dir: Path) -> Iterator[tuple[ServerThread, Client]]:
    """A server running one job at a time, so that a follower can start before its job."""
    config = tmp_path / "config.yml"
    config.write_text("joblet:\n  maxConcurrentJobs: 1\n")
    server = ServerThread(tmp_path / "data", certs_dir, config_file=config)
    server.start()
    client = Client(
        server=f"localhost:{server.port}",
        cert=str(certs_dir / "admin-client-cert.pem"),
        key=str(certs_dir / "admin-client-key.pem"),
        ca=str(certs_dir / "ca-cert.pem"),
    )
    yield server, client
    client.close()
    server.close()


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_followers_starting_at_random_moments_get_exactly_the_file(
    one_at_a_time: tuple[ServerThread, Client], seed: int
) -> None:
    server, client = one_at_a_time
    rng = random.Random(seed)
    blocker = client.submit("sleep", ["0.5"])
    job_id = submit_writer(client, seed=seed, pieces=400)
    assert client.job(job_id).status == "QUEUED"
    followers = _start_followers(client, job_id, 4)  # before the job starts
    client.wait(blocker.id, timeout=WAIT_SECONDS)
    started = time.monotonic()
    while not client.job(job_id).done:
        time.sleep(rng.uniform(0.0, 0.15))
        followers += _start_followers(client, job_id, 1)  # while it runs
    mid_run = len(followers) - 4
    followers += _start_followers(client, job_id, 2)  # after the end
    for follower in followers:
        follower.join(WAIT_SECONDS)
        assert not follower.is_alive()
        assert follower.error is None, follower.error
    expected = output_of(server, job_id)
    assert mid_run >= 3, f"the job ran {time.monotonic() - started:.2f} s only"
    for i, follower in enumerate(followers):
        assert follower.data == expected, f"follower {i} differs"


# -- many followers ------------------------------------------------------------------------


def test_many_followers_each_get_every_byte_once_in_order(
    admin: Client, server: ServerThread
) -> None:
    job = admin.submit("sh", ["-c", "for i in $(seq 1 40); do seq 1 30000; done"])  # ~7 MB
    results: list[bytes | BaseException] = [b""] * 50

    def follow(i: int) -> None:
        try:
            results[i] = joined(list(admin.read_logs(job.id, follow=True)))
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=follow, args=(i,)) for i in range(len(results))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_SECONDS)
    assert admin.wait(job.id, timeout=WAIT_SECONDS).status == "COMPLETED"
    expected = output_of(server, job.id)
    assert len(expected) > 5_000_000
    for i, result in enumerate(results):
        assert result == expected, f"follower {i}: {result!r:.200}"


# -- a stalled follower ------------------------------------------------------------------


@pytest.fixture
def impatient(tmp_path: Path, certs_dir: Path) -> Iterator[tuple[ServerThread, ClientFactory]]:
    """A server that cuts off a follower after 1 s without progress."""
    config = tmp_path / "config.yml"
    config.write_text('jobyard:\n  logFollowerStallTimeout: "1s"\n')
    server = ServerThread(tmp_path / "data", certs_dir, config_file=config)
    server.start()
    clients: list[Client] = []

    def make() -> Client:
        client = Client(
            server=f"localhost:{server.port}",
            cert=str(certs_dir / "admin-client-cert.pem"),
            key=str(certs_dir / "admin-client-key.pem"),
            ca=str(certs_dir / "ca-cert.pem"),
        )
        clients.append(client)
        return client

    yield server, make
    for client in clients:
        client.close()
    server.close()


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / (1 << 20)


def _digest_of_stream(chunks: Iterator[LogChunk], start: int = 0) -> tuple[str, int]:
    digest, position = hashlib.sha256(), start
    for chunk in chunks:
        assert chunk.offset == position
        digest.update(chunk.data)
        position = chunk.end
    return digest.hexdigest(), position


def test_a_stalled_follower_is_cut_off_delays_nobody_and_can_resume(
    impatient: tuple[ServerThread, ClientFactory],
) -> None:
    server, make = impatient
    admin = make()
    # 200 MB, written as fast as the disk takes it.
    job = admin.submit("sh", ["-c", "sleep 0.3; head -c 200000000 /dev/urandom"])
    stalled_channel = make()._channel  # its own connection: flow control is per stream
    stub = v1_grpc.JobyardServiceStub(stalled_channel)
    stalled = stub.ReadLogs(v1.ReadLogsRequest(id=job.id, follow=True))
    first = next(stalled)  # then it stops reading
    rss_before = _rss_mb()

    fast_digest, fast_end = _digest_of_stream(make().read_logs(job.id, follow=True))
    assert admin.wait(job.id, timeout=WAIT_SECONDS).status == "COMPLETED"
    rss_growth = _rss_mb() - rss_before
    expected = output_of(server, job.id)
    assert fast_end == len(expected) == 200_000_000
    assert fast_digest == hashlib.sha256(expected).hexdigest()
    # The stalled stream holds no more than gRPC's flow-control windows, not the output.
    assert rss_growth < 100, f"memory grew by {rss_growth:.0f} MB"

    time.sleep(1.5)  # past the stall timeout: the server has given up on it
    received = [LogChunk(first.offset, first.data)]
    with pytest.raises(grpc.RpcError) as cut:
        for msg in stalled:
            received.append(LogChunk(msg.offset, msg.data))
    assert cut.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "follower too slow" in (cut.value.details() or "")
    position = received[-1].end
    assert f"resume from offset {position}" in (cut.value.details() or "")
    assert position < len(expected)  # it was cut off well before the end

    # Resuming from its own offset gives exactly the rest.
    head = joined(received)
    rest_digest, end = _digest_of_stream(admin.read_logs(job.id, offset=position), position)
    assert end == len(expected)
    whole = hashlib.sha256(head + expected[position:]).hexdigest()
    assert whole == hashlib.sha256(expected).hexdigest()
    assert rest_digest == hashlib.sha256(expected[position:]).hexdigest()


# -- server shutdown ---------------------------------------------------------------------


def test_followers_are_told_to_resume_when_the_server_stops(
    admin: Client, server: ServerThread
) -> None:
    job = admin.submit("sh", ["-c", "echo before; sleep 30"])
    stub = v1_grpc.JobyardServiceStub(admin._channel)
    stream = stub.ReadLogs(v1.ReadLogsRequest(id=job.id, follow=True))
    first = next(stream)
    assert first.data == b"before\n"
    server.stop()  # the job keeps running; the next server adopts it
    with pytest.raises(grpc.RpcError) as ended:
        list(stream)
    assert ended.value.code() is grpc.StatusCode.UNAVAILABLE
    # A follow that ended because the server stopped never looks like the job's end.
    assert "resume from offset 7" in (ended.value.details() or "")
    server.start()


# -- retention -----------------------------------------------------------------------------


def test_output_is_removed_with_its_job_and_a_reader_in_progress_finishes(
    admin: Client, server: ServerThread
) -> None:
    job = admin.submit("head", ["-c", "5000000", "/dev/urandom"])
    admin.wait(job.id, timeout=WAIT_SECONDS)
    expected = output_of(server, job.id)
    reader = admin.read_logs(job.id)
    first = next(reader)
    assert admin.delete(job.id) == job.id
    assert not (server.data_dir / "jobs" / job.id).exists()
    # Its file was open: the reader that had started still gets every byte.
    assert joined([first, *reader]) == expected
    with pytest.raises(NotFound, match="job not found"):
        list(admin.read_logs(job.id))
