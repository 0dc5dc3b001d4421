"""The provider face with jobyard as a daemon and ``kill -9``: Core hears every state change
of its jobs, in order, across a Core outage and a jobyard crash together."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.daemon import Daemon, free_port
from tests.integration.provider_support import FakeCore, provider_config, runnable
from tests.unit.ucloud_samples import seed_provider_create

JOBS = "/ucloud/example/jobs"


class ProviderDaemon:
    def __init__(self, root: Path, core: FakeCore) -> None:
        self.daemon = Daemon(root)
        self.port = free_port()
        self.config = provider_config(root, core)
        self.start()
        made = self.daemon.run("tokens", "create", "--data-dir", "data", "--name", "core",
                               "--role", "ucloud", cwd=root, check=True)  # fmt: skip
        self.token = made.stdout.strip()
        self.context = ssl.create_default_context(cafile=str(self.daemon.certs / "ca-cert.pem"))

    def start(self) -> None:
        self.daemon.start("--http-listen", f"127.0.0.1:{self.port}", "--config", str(self.config))

    def post(self, path: str, body: dict[str, Any]) -> Any:
        with httpx.Client(base_url=f"https://localhost:{self.port}", verify=self.context,
                          timeout=30) as web:  # fmt: skip
            answer = web.post(path, json=body, headers={"Authorization": f"Bearer {self.token}"})
        assert answer.status_code == 200, answer.text
        return answer.json()


@pytest.fixture
def core() -> Iterator[FakeCore]:
    fake = FakeCore()
    yield fake
    fake.close()


@pytest.fixture
def provider(tmp_path: Path, core: FakeCore) -> Iterator[ProviderDaemon]:
    running = ProviderDaemon(tmp_path, core)
    yield running
    running.daemon.stop()


def test_updates_survive_a_core_outage_and_kill9_together(
    provider: ProviderDaemon, core: FakeCore
) -> None:
    core.down()
    quick = runnable(seed_provider_create(), "81001", ["true"])
    slow = runnable(seed_provider_create(), "81002", ["sleep", "600"])
    answer = provider.post(JOBS, {"items": [quick, slow]})
    first, _ = (item["id"] for item in answer["responses"])
    assert provider.daemon.wait(first)["status"] == "COMPLETED"
    provider.daemon.kill9()  # every update still unsent: Core is down
    provider.start()  # the same data dir; Core still down
    core.up()
    core.wait_states("81001", ["RUNNING", "SUCCESS"])
    core.wait_states("81002", ["RUNNING"])
    provider.post(f"{JOBS}/terminate", {"items": [slow]})
    core.wait_states("81002", ["RUNNING", "SUCCESS"])
    assert [s for _, s in core.updates("81001")] == ["RUNNING", "SUCCESS"]
    assert [s for _, s in core.updates("81002")] == ["RUNNING", "SUCCESS"]


def test_a_job_running_through_kill9_is_reported_in_order(
    provider: ProviderDaemon, core: FakeCore
) -> None:
    job = runnable(seed_provider_create(), "81003", ["sleep", "600"])
    provider.post(JOBS, {"items": [job]})
    core.wait_states("81003", ["RUNNING"])
    provider.daemon.kill9()  # perhaps before it heard Core acknowledge RUNNING
    provider.start()  # the job was adopted, still running
    provider.post(f"{JOBS}/terminate", {"items": [job]})
    core.wait(lambda: core.first_states("81003") == ["RUNNING", "SUCCESS"], "the end")
    # At least once, in order: RUNNING may come twice (its acknowledgement died with the
    # process), but nothing is lost and nothing comes after the end.
    states = [s for _, s in core.updates("81003")]
    assert states[-1] == "SUCCESS" and set(states[:-1]) == {"RUNNING"}
