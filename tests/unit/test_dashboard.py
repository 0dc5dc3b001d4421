"""The dashboard's parts without a server: sessions and CSRF, origin checks, filters,
what rows and buttons show, the workflow graph's layout, the live subscription's checks."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import HTTPConnection

from jobyard.domain.access import Identity, Role
from jobyard.domain.errors import InvalidArgument, PermissionDenied, Unauthenticated
from jobyard.domain.jobs import Job, JobSpec
from jobyard.domain.status import Status
from jobyard.http.dashboard.graph import NODE_WIDTH, Vertex, columns, layout
from jobyard.http.dashboard.live import MAX_WATCHED_IDS, Subscription, _subscription
from jobyard.http.dashboard.pages import JobFilters
from jobyard.http.dashboard.rendering import allowed, job_row, size
from jobyard.http.dashboard.sessions import (
    COOKIE,
    Sessions,
    check_csrf,
    check_same_origin,
    cookie_header,
)
from jobyard.store import SQLiteStore
from jobyard.store.tokens import SQLiteTokens

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture
def tokens(tmp_path: Path) -> SQLiteTokens:
    return SQLiteTokens(SQLiteStore(tmp_path / "jobyard.db").connection)


def connection(headers: dict[str, str]) -> HTTPConnection:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return HTTPConnection({"type": "http", "headers": raw, "path": "/", "query_string": b""})


def test_a_session_maps_to_its_token_and_ends_with_it(tokens: SQLiteTokens) -> None:
    _, secret = tokens.create("alice", Role.USER, project="lab")
    sessions = Sessions(tokens)
    session_id, identity = sessions.sign_in(secret)
    assert identity == Identity("alice", Role.USER, "lab")
    assert secret not in session_id and len(session_id) >= 40
    found = sessions.of(connection({"cookie": f"{COOKIE}={session_id}"}))
    assert found is not None and found[1] == identity
    assert secret not in repr(found[0])
    tokens.revoke("alice")
    assert sessions.find(session_id) is None  # revoked: signed out at once
    with pytest.raises(Unauthenticated, match="revoked"):
        sessions.sign_in(secret)


def test_idle_sessions_expire_and_unknown_ones_are_nobody(tokens: SQLiteTokens) -> None:
    _, secret = tokens.create("bob", Role.VIEWER)
    sessions = Sessions(tokens, idle_seconds=0)
    session_id, _ = sessions.sign_in(secret)
    assert sessions.find(session_id) is None
    assert sessions.of(connection({"cookie": f"{COOKIE}=nope"})) is None
    assert sessions.of(connection({"cookie": f"{COOKIE}={'x' * 500}"})) is None
    assert sessions.of(connection({})) is None


def test_csrf_token_must_match(tokens: SQLiteTokens) -> None:
    _, secret = tokens.create("carol", Role.ADMIN)
    sessions = Sessions(tokens)
    session_id, _ = sessions.sign_in(secret)
    found = sessions.find(session_id)
    assert found is not None
    session = found[0]
    check_csrf(session, session.csrf)
    for bad in (None, "", session.csrf[:-1], "x" * len(session.csrf)):
        with pytest.raises(PermissionDenied, match="CSRF"):
            check_csrf(session, bad)


def test_same_origin_checks_origin_then_fetch_metadata() -> None:
    host = {"host": "localhost:8443"}
    check_same_origin(connection({**host, "origin": "https://localhost:8443"}))
    check_same_origin(connection({**host, "sec-fetch-site": "same-origin"}))
    check_same_origin(connection(host))  # a non-browser client: no CSRF risk
    for headers in ({"origin": "https://evil.example"}, {"origin": "null"},
                    {"sec-fetch-site": "cross-site"}, {"sec-fetch-site": "same-site"}):  # fmt: skip
        with pytest.raises(PermissionDenied):
            check_same_origin(connection({**host, **headers}))


def test_the_cookie_is_httponly_secure_and_strict() -> None:
    parts = [p.strip() for p in cookie_header("abc").split(";")]
    assert parts[0] == f"{COOKIE}=abc"
    assert {"HttpOnly", "Secure", "SameSite=Strict", "Path=/"} <= set(parts)
    assert "Max-Age=0" in cookie_header("", max_age=0)


def test_filters_validate_and_keep_their_values_across_pages() -> None:
    filters = JobFilters(status="RUNNING", owner=" alice ", label="team=blue", next="")
    query = filters.query()
    assert query.statuses == frozenset({Status.RUNNING})
    assert (query.owner, dict(query.labels)) == ("alice", {"team": "blue"})
    assert filters.link("42") == "/?status=RUNNING&owner=alice&label=team%3Dblue&next=42"
    with pytest.raises(InvalidArgument, match="invalid status"):
        JobFilters(status="DONE")
    with pytest.raises(InvalidArgument, match="KEY=VALUE"):
        JobFilters(label="team")


def _job(status: Status, **fields: Any) -> Job:
    return Job(id="0123456789abcdef", owner="alice", spec=JobSpec("sleep", name="nap"),
               status=status, created_at=T0, **fields)  # fmt: skip


def test_rows_offer_only_the_actions_the_status_allows() -> None:
    assert job_row(_job(Status.RUNNING))["actions"] == ["stop", "extend", "suspend"]
    assert job_row(_job(Status.SUSPENDED))["actions"] == ["stop", "extend", "resume"]
    assert job_row(_job(Status.QUEUED))["actions"] == ["stop"]
    done = job_row(_job(Status.COMPLETED, ended_at=T0 + timedelta(seconds=3)))
    assert done["actions"] == [] and done["terminal"] is True
    assert (done["short"], done["ended"]) == ("01234567", "2026-01-02 03:04:08 UTC")


def test_buttons_follow_the_role_table() -> None:
    viewer, user = Identity("v", Role.VIEWER), Identity("u", Role.USER)
    assert not allowed(viewer, "stop_job") and allowed(user, "stop_job")
    assert allowed(viewer, "read_metrics") and not allowed(user, "read_metrics")


def test_sizes_read_well() -> None:
    assert [size(0), size(1023), size(1536), size(5 * 1024**3)] == [
        "0 B", "1023 B", "1.5 KiB", "5.0 GiB",
    ]  # fmt: skip


def test_graph_columns_follow_dependencies_and_edges_join_nodes() -> None:
    vertices = [
        Vertex("fetch", "j1", "COMPLETED", ()),
        Vertex("lint", "", "PENDING", ()),
        Vertex("build", "j2", "RUNNING", ("fetch",)),
        Vertex("report", "", "PENDING", ("build", "lint")),
    ]
    assert columns(vertices) == {"fetch": 0, "lint": 0, "build": 1, "report": 2}
    graph = layout(vertices)
    nodes = {n.name: n for n in graph.nodes}
    assert nodes["fetch"].x == nodes["lint"].x < nodes["build"].x < nodes["report"].x
    assert nodes["fetch"].y < nodes["lint"].y
    edges = {(e.source, e.target): e for e in graph.edges}
    assert set(edges) == {("fetch", "build"), ("build", "report"), ("lint", "report")}
    fetch_build = edges[("fetch", "build")]
    assert (fetch_build.x1, fetch_build.x2) == (nodes["fetch"].x + NODE_WIDTH, nodes["build"].x)
    assert graph.width >= nodes["report"].x + NODE_WIDTH


def test_graph_survives_unknown_dependencies_and_cycles() -> None:
    vertices = [Vertex("a", "", "PENDING", ("b",)), Vertex("b", "", "PENDING", ("a",)),
                Vertex("c", "", "PENDING", ("missing",))]  # fmt: skip
    graph = layout(vertices)
    assert {n.name for n in graph.nodes} == {"a", "b", "c"}
    assert all(dataclasses.astuple(n) for n in graph.nodes)


def test_live_subscriptions_are_checked() -> None:
    assert _subscription('{"watch": "job", "id": "abc"}') == Subscription("job", ref="abc")
    table = _subscription('{"watch": "jobs", "ids": ["a", "b"], "new": true}')
    assert table == Subscription("jobs", ids=("a", "b"), new=True)
    assert _subscription('{"watch": "jobs", "ids": [], "new": "yes"}').new is False
    bad = [
        "not json",
        "[]",
        '{"watch": "everything"}',
        '{"watch": "job"}',
        '{"watch": "job", "id": 5}',
        '{"watch": "jobs", "ids": "a"}',
        '{"watch": "jobs", "ids": [""]}',
        '{"watch": "jobs", "ids": %s}' % (["x"] * (MAX_WATCHED_IDS + 1)),
        "x" * 10_000,
    ]
    for text in bad:
        with pytest.raises(InvalidArgument):
            _subscription(text.replace("'", '"'))
