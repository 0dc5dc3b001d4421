"""Schemathesis fuzzes the provider face's endpoints (``/ucloud/...`` of /openapi.json) as
UCloud/Core's service account would call them, against a real server whose Core is a fake:
nothing answers 5xx, every refusal is UCloud's error body, and the server keeps serving."""

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
from tests.integration.http_support import make_token
from tests.integration.provider_support import FakeCore, provider_config

# The document a provider server serves, its /ucloud/ part (the rest: test_http_fuzz.py).
schema = schemathesis.openapi.from_dict(
    create_app(None, provider=object()).openapi()  # type: ignore[arg-type]
).include(path_regex="^/ucloud/")
MAX_EXAMPLES = 12


class Target:
    def __init__(self, thread: ServerThread, ca: Path) -> None:
        assert thread.running is not None
        self.url = f"https://localhost:{thread.running.http_port}"
        self.session = requests.Session()
        self.ca = str(ca)
        self.session.verify = self.ca
        self.session.trust_env = False
        self.token = make_token(thread.data_dir, "core", "ucloud")


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory, certs_dir: Path) -> Iterator[Target]:
    if root_problem():
        pytest.skip(root_problem() or "")
    root = tmp_path_factory.mktemp("provider-fuzz")
    core = FakeCore()
    thread = ServerThread(root / "data", certs_dir, http_listen="127.0.0.1:0",
                          config_file=provider_config(root, core))  # fmt: skip
    thread.start()
    target = Target(thread, certs_dir / "ca-cert.pem")
    yield target
    target.session.close()
    thread.close()
    core.close()


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_input_makes_the_provider_face_fail(case: Any, target: Target) -> None:
    case.path_parameters = {**(case.path_parameters or {}), "providerId": "example"}
    for headers in ({"Authorization": f"Bearer {target.token}"}, None):
        response = case.call(
            base_url=target.url, session=target.session, headers=headers, verify=target.ca
        )
        assert response.status_code < 500, (case.method, case.path, response.text[:500])
        if response.status_code >= 400:
            assert set(response.json()) == {"why", "errorCode"}, response.text[:500]
    alive = target.session.get(f"{target.url}/openapi.json", timeout=30)
    assert alive.status_code == 200
