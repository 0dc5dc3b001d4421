"""Pieces of the HTTPS face without a server: the WebSocket envelope, browse filters, the
body limit, error bodies."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from jobyard.domain.errors import InvalidArgument
from jobyard.http.app import BodyLimit
from jobyard.http.browse import BrowseFilters
from jobyard.http.errors import validation_why
from jobyard.http.follow import envelope


def test_envelope_takes_uclouds_fields_and_refuses_the_rest() -> None:
    message = {"call": "jobs.follow", "streamId": "s", "payload": {"id": "j"}, "bearer": "t"}
    assert envelope(json.dumps(message)) == ("jobs.follow", "s", {"id": "j"}, "t")
    for bad in (
        "{",
        "[]",
        json.dumps({**message, "streamId": ""}),
        json.dumps({**message, "streamId": "x" * 200}),
        json.dumps({**message, "payload": "id"}),
        json.dumps({**message, "bearer": 1}),
    ):
        with pytest.raises(InvalidArgument):
            envelope(bad)


def test_browse_filters_map_to_native_queries() -> None:
    filters = BrowseFilters(itemsPerPage=10, filterState="EXPIRED", filterApplication="app",
                            filterCreatedAfter=1633329776235, filterIds="a, b")  # fmt: skip
    query = filters.query("", 10)
    assert {s.value for s in query.statuses} == {"STOPPED"}
    assert query.labels == {"ucloud.application": "app"}
    assert query.created_after is not None and query.created_after.year == 2021
    assert filters.ids == {"a", "b"}
    with pytest.raises(InvalidArgument, match="filterState"):
        BrowseFilters(filterState="DONE")


async def _echo(scope: Any, receive: Any, send: Any) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"x-type", dict(scope["headers"]).get(b"content-type", b""))],
        }
    )
    await send({"type": "http.response.body", "body": body})  # fmt: skip


async def test_body_limit_refuses_big_bodies_and_reads_json_whatever_the_type() -> None:
    transport = httpx.ASGITransport(app=BodyLimit(_echo, max_bytes=10))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        small = await client.post("/", content=b"{}", headers={"content-type": "text/plain"})
        assert (small.status_code, small.headers["x-type"]) == (200, "application/json")
        big = await client.post("/", content=b"x" * 11)
        assert big.status_code == 413 and big.json()["errorCode"] == "PAYLOAD_TOO_LARGE"

        async def chunks() -> Any:
            for _ in range(3):
                yield b"xxxxx"

        streamed = await client.post("/", content=chunks())
        assert streamed.status_code == 413


def test_validation_errors_name_the_field() -> None:
    errors = [{"loc": ("body", "items", 0, "replicas"), "msg": "Input should be >= 1"},
              {"loc": ("body",), "msg": "x", "type": "json_invalid"}]  # fmt: skip
    assert validation_why(errors) == (
        "invalid request: items.0.replicas: Input should be >= 1; malformed JSON"
    )
