"""Seed 001 replayed against the real server: the curl flow's request bodies, headers and
query strings as the seed writes them, and its JSON answers compared key by key, in order.

The bodies and answers are parsed out of ``shared/seeds/001_*.txt`` (its "Communication
Flow: Curl" part). What cannot be the seed's literally is compared by rule: the job id
(generated), and the times (now, not 2021) by their relations — the first update at
createdAt, expiresAt moved by exactly the requested hour, null once terminated. The one
value that differs on purpose: ``startedAt`` is the job's real start (the seed shows null
while the job runs).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.integration.conftest import ServerThread
from tests.integration.http_support import Http, make_token, wait_state

SEED_ID = "62348"
TIME_KEYS = {"createdAt", "timestamp", "expiresAt", "startedAt"}


def seed_text() -> str:
    here = Path(__file__).resolve()
    for parent in here.parents:
        for path in (parent / "shared" / "seeds").glob("001_*.txt"):
            return path.read_text()
    raise AssertionError("shared/seeds/001_*.txt not found beside the repository")


def curl_steps() -> list[tuple[str, str, dict[str, str], str | None, Any]]:
    """``(method, path?query, headers, body, answer)`` of each curl call of the seed."""
    text = seed_text().split("Communication Flow: Curl", 1)[1]
    steps = []
    for match in re.finditer(r"^curl (.*?)(?=^curl |\Z)", text, re.S | re.M):
        block = match.group(1)
        method = re.match(r"-X(\w+)", block).group(1)  # type: ignore[union-attr]
        headers = dict(h.split(": ", 1) for h in re.findall(r'-H "([^"]+)"', block))
        url = re.search(r'"\$host(/[^"]*)"', block).group(1)  # type: ignore[union-attr]
        body = re.search(r"-d '(.*?)'\n", block, re.S)
        answer_lines = [line[2:] for line in block.splitlines() if line.startswith("# ")]
        answer_text = "\n".join(answer_lines)
        answer = json.loads(answer_text[answer_text.index("{") : answer_text.rindex("}") + 1])
        steps.append((method, url, headers, body.group(1) if body else None, answer))
    return steps


def shape(value: Any, job_id: str) -> Any:
    """``value`` with the seed's id as ``job_id`` and times as a marker; keys keep order."""
    if isinstance(value, dict):
        return [(k, "<time>" if k in TIME_KEYS and v is not None else shape(v, job_id))
                for k, v in value.items()]  # fmt: skip
    if isinstance(value, list):
        return [shape(v, job_id) for v in value]
    return job_id if value == SEED_ID else value


def test_seed_001_flow_byte_for_byte(http: Http, http_server: ServerThread) -> None:
    steps = curl_steps()
    assert [s[0] + " " + s[1].split("?")[0] for s in steps] == [
        "POST /api/jobs", "GET /api/jobs/retrieve", "POST /api/jobs/extend",
        "GET /api/jobs/retrieve", "POST /api/jobs/terminate", "GET /api/jobs/retrieve",
    ]  # fmt: skip
    token = make_token(http_server.data_dir, "user")  # the seed's user is named "user"
    job_id = ""
    answers = []
    for i, (method, url, headers, body, expected) in enumerate(steps):
        headers = {**headers, "Authorization": f"Bearer {token}"}
        if job_id:
            url, body = url.replace(SEED_ID, job_id), body and body.replace(SEED_ID, job_id)
        response = http.client.request(method, url, headers=headers, content=body)
        assert response.status_code == 200, response.text
        answer = response.json()
        if i == 0:
            job_id = answer["responses"][0]["id"]
            wait_state(http, token, job_id, "RUNNING")  # the seed retrieves it running
        expected_startedat_null = shape(expected, job_id)
        assert _started_as_seed(shape(answer, job_id)) == expected_startedat_null, i
        answers.append(answer)
    created, extended, terminated = answers[1], answers[3], answers[5]
    assert created["updates"][0]["timestamp"] == created["createdAt"]
    assert extended["status"]["expiresAt"] - created["status"]["expiresAt"] == 3600 * 1000
    assert created["status"]["expiresAt"] - created["status"]["startedAt"] == 5 * 3600 * 1000
    assert terminated["status"]["expiresAt"] is None
    assert terminated["updates"][-1]["timestamp"] >= created["updates"][-1]["timestamp"]


def _started_as_seed(shaped: Any) -> Any:
    """startedAt as the seed shows it (null): ours is the real start time."""
    if isinstance(shaped, list):
        return [
            ("startedAt", None) if isinstance(item, tuple) and item[0] == "startedAt"
            else _started_as_seed(item) for item in shaped
        ]  # fmt: skip
    if isinstance(shaped, tuple):
        return (shaped[0], _started_as_seed(shaped[1]))
    return shaped
