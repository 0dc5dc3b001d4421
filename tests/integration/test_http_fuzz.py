"""Schemathesis fuzzes every endpoint of /openapi.json against a real server (bounded: a few
examples each, derandomized, so a CI run takes seconds): nothing answers 5xx, every refusal
is UCloud's error body, and the server keeps serving."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from jobyard.http.app import create_app
from tests.conftest import root_problem
from tests.integration.conftest import ServerThread
from tests.integration.http_support import HTTP_CONFIG_FILE, make_token

# The document the server serves (it does not depend on the server's state).
schema = schemathesis.openapi.from_dict(create_app(None).openapi())  # type: ignore[arg-type]
MAX_EXAMPLES = 12


class Target:
    def __init__(self, thread: ServerThread, ca: Path) -> None:
        assert thread.running is not None
        self.url = f"https://localhost:{thread.running.http_port}"
        self.session = requests.Session()
        self.ca = str(ca)
        self.session.verify = self.ca
        self.session.trust_env = False  # REQUESTS_CA_BUNDLE would replace our CA
        self.token = make_token(thread.data_dir, "fuzzer", "admin")


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory, certs_dir: Path) -> Iterator[Target]:
    if root_problem():
        pytest.skip(root_problem() or "")
    thread = ServerThread(tmp_path_factory.mktemp("fuzz") / "data", certs_dir,
                          http_listen="127.0.0.1:0", config_file=HTTP_CONFIG_FILE)  # fmt: skip
    thread.start()
    target = Target(thread, certs_dir / "ca-cert.pem")
    yield target
    target.session.close()
    thread.close()


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_input_makes_the_server_fail(case: Any, target: Target) -> None:
    for headers in ({"Authorization": f"Bearer {target.token}"}, None):
        response = case.call(
            base_url=target.url, session=target.session, headers=headers, verify=target.ca
        )
        assert response.status_code < 500, (case.method, case.path, response.text[:500])
        if response.status_code >= 400:
            assert set(response.json()) == {"why", "errorCode"}, response.text[:500]
    alive = target.session.get(f"{target.url}/openapi.json", timeout=30)
    assert alive.status_code == 200
