"""joblet.NetworkService and --network against a real server: real bridges, veth pairs and
network namespaces. Traffic only ever flows inside the networks created here (private
ranges with no route off the machine)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from jobyard.certs import issue_client
from jobyard.cli.main import cli
from jobyard.client import Client
from jobyard.domain.access import SYSTEM
from jobyard.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from jobyard.engine.networks import HostNetworks
from jobyard.engine.resources import Registry
from tests.integration.conftest import ClientFactory, ServerThread

WAIT_SECONDS = 60
PORT = 7070
# Prints the job's address on eth0, then answers one connection with "pong".
SERVER = f"""
import socket, subprocess
out = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", "eth0"],
                     capture_output=True, text=True).stdout
print(out.split()[3].split("/")[0], flush=True)
s = socket.socket(); s.bind(("0.0.0.0", {PORT})); s.listen(1)
conn, _ = s.accept(); conn.sendall(b"pong"); conn.close()
"""
CLIENT = f"""
import socket, sys
try:
    c = socket.create_connection((sys.argv[1], {PORT}), timeout=3)
    print("got", c.recv(4).decode())
except OSError as exc:
    print("unreachable:", exc.strerror or exc)
"""


@pytest.fixture(autouse=True)
def no_leftovers(server: ServerThread) -> Iterator[None]:
    """Every job ended, its namespace goes; then this test's networks (and bridges) go. Only
    this server's: other servers on the host keep theirs."""
    yield
    server.drain()
    prefix = HostNetworks(server.data_dir).netns_name("")
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert [n for n in namespaces.splitlines() if n.startswith(prefix)] == [], (
        "job network namespaces outlived their jobs"
    )
    assert server.running is not None
    registry = server.running.engine.attachments
    assert isinstance(registry, Registry)
    for network in registry.networks(SYSTEM):
        server.call(registry.remove_network(SYSTEM, network.name))


def _address_of_listener(client: Client, network: str) -> tuple[str, str]:
    """Start the listener on ``network``; its job id and address (once it printed it)."""
    job = client.submit("python3", ["-c", SERVER], network=network)
    for chunk in client.logs(job.id, follow=True):
        return job.id, chunk.decode().strip()
    raise AssertionError(f"the listener ended early: {client.job(job.id)}")


def _try(client: Client, address: str, network: str) -> str:
    job = client.submit("python3", ["-c", CLIENT, address], network=network)
    done = client.wait(job.id, timeout=WAIT_SECONDS)
    assert done.status == "COMPLETED", done
    return b"".join(client.logs(job.id)).decode().strip()


def test_jobs_on_one_network_reach_each_other_and_no_one_else(admin: Client) -> None:
    created = admin.create_network("alpha", "10.77.1.0/24")
    assert (created.name, created.cidr) == ("alpha", "10.77.1.0/24")
    assert created.bridge.startswith("jyb")
    admin.create_network("beta", "10.77.2.0/24")

    listener, address = _address_of_listener(admin, "alpha")
    assert address == "10.77.1.2"  # the first address after the reserved one
    assert _try(admin, address, "beta").startswith("unreachable:")
    assert _try(admin, address, "isolated").startswith("unreachable:")
    assert _try(admin, address, "none").startswith("unreachable:")
    assert [(n.name, n.job_count) for n in admin.networks()] == [("alpha", 1), ("beta", 0)]
    assert _try(admin, address, "alpha") == "got pong"
    assert admin.wait(listener, timeout=WAIT_SECONDS).status == "COMPLETED"


def test_an_isolated_job_has_a_namespace_of_its_own(admin: Client) -> None:
    job = admin.submit("sh", ["-c", "ip -o link | cut -d: -f2; readlink /proc/self/ns/net"],
                       network="isolated")  # fmt: skip
    assert admin.wait(job.id, timeout=WAIT_SECONDS).status == "COMPLETED"
    links, netns = b"".join(admin.logs(job.id)).decode().splitlines()
    assert links.strip() == "lo"  # loopback only: no way to any other job
    host = subprocess.run(["readlink", "/proc/self/ns/net"], capture_output=True, text=True)
    assert netns.startswith("net:[") and netns != host.stdout.strip()


def test_a_network_in_use_stays_and_missing_ones_refuse_the_job(admin: Client) -> None:
    admin.create_network("gamma", "10.77.3.0/29")
    job = admin.submit("sleep", ["60"], network="gamma")
    with pytest.raises(FailedPrecondition, match="network gamma is in use by 1 unfinished job"):
        admin.remove_network("gamma")
    admin.stop(job.id)
    assert admin.remove_network("gamma") == "network gamma removed"
    with pytest.raises(NotFound, match=r"^network not found: gamma$"):
        admin.submit("true", network="gamma")
    with pytest.raises(NotFound, match=r"^invalid workflow: job 'a': network not found: gamma$"):
        admin.run_workflow("jobs:\n  a: {command: 'true', network: gamma}\n")
    assert admin.jobs()[0].id == job.id and len(admin.jobs()) == 1


@pytest.mark.parametrize(
    ("name", "cidr", "message"),
    [
        ("delta", "10.77.4.0/24", "overlaps network taken"),
        ("isolated", "10.77.5.0/24", "it names a network mode"),
        ("delta", "8.8.8.0/24", "use a private range"),
        ("delta", "10.77.4.9/24", "has host bits set"),
    ],
)
def test_bad_networks_are_refused(admin: Client, name: str, cidr: str, message: str) -> None:
    admin.create_network("taken", "10.77.4.0/23")
    with pytest.raises(InvalidArgument, match=message):
        admin.create_network(name, cidr)
    assert [n.name for n in admin.networks()] == ["taken"]
    admin.remove_network("taken")


def test_networks_are_scoped_to_their_owner(
    client_for: ClientFactory, certs_dir: Path, admin: Client
) -> None:
    issue_client(certs_dir, "nina", "user", overwrite=True)
    issue_client(certs_dir, "otto", "user", overwrite=True)
    nina, otto = client_for("nina"), client_for("otto")
    nina.create_network("ninas", "10.77.6.0/29")
    assert otto.networks() == []
    with pytest.raises(NotFound, match=r"^network not found: ninas$"):
        otto.submit("true", network="ninas")
    assert [(n.name, n.owner) for n in admin.networks()] == [("ninas", "nina")]
    nina.remove_network("ninas")


def test_network_commands(server: ServerThread, certs_dir: Path) -> None:
    base = [
        f"--server=localhost:{server.port}",
        f"--cert={certs_dir / 'admin-client-cert.pem'}",
        f"--key={certs_dir / 'admin-client-key.pem'}",
        f"--ca={certs_dir / 'ca-cert.pem'}",
    ]
    runner = CliRunner()
    made = runner.invoke(cli, [*base, "network", "create", "cli-net", "--cidr", "10.77.9.0/28"])
    assert made.exit_code == 0 and "CIDR: 10.77.9.0/28" in made.output, made.output
    listed = runner.invoke(cli, [*base, "network", "list"]).output.splitlines()
    assert listed[1].split()[:2] == ["cli-net", "10.77.9.0/28"]
    ran = runner.invoke(cli, [*base, "run", "--network", "cli-net", "true"])
    assert ran.exit_code == 0 and "Network: cli-net" in ran.output, ran.output
    missing = runner.invoke(cli, [*base, "run", "--network", "nope", "true"])
    assert missing.exit_code == 1 and "network not found: nope" in missing.output
    with Client(f"localhost:{server.port}", base[1][7:], base[2][6:], base[3][5:]) as client:
        for job in client.jobs():
            client.wait(job.id, timeout=WAIT_SECONDS)
    removed = runner.invoke(cli, [*base, "network", "remove", "cli-net"])
    assert removed.exit_code == 0, removed.output


def test_a_restart_keeps_running_jobs_addresses(admin: Client, server: ServerThread) -> None:
    admin.create_network("lasting", "10.77.8.0/24")
    listener, address = _address_of_listener(admin, "lasting")
    server.stop()
    server.start()  # the listener runs on; the new server reads its lease back from the host
    with Client(f"localhost:{server.port}", admin.settings.cert, admin.settings.key,
                admin.settings.ca) as again:  # fmt: skip
        job = again.submit(
            "sh", ["-c", f"ip -4 -o addr show dev eth0; python3 -c '{CLIENT}' {address}"],
            network="lasting",
        )  # fmt: skip
        assert again.wait(job.id, timeout=WAIT_SECONDS).status == "COMPLETED"
        out = b"".join(again.logs(job.id)).decode()
        assert "inet 10.77.8.3/24" in out  # not the listener's 10.77.8.2
        assert out.rstrip().endswith("got pong")
        assert again.wait(listener, timeout=WAIT_SECONDS).status == "COMPLETED"
