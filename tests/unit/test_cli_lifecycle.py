"""CLI lifecycle pieces without a server: time parsing, which listing call, tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import click
import pytest
from click.testing import CliRunner

from jobyard.cli import state as state_module
from jobyard.cli.lifecycle import Duration, When, file_table
from jobyard.cli.main import cli
from jobyard.client import Job, JobFile, JobPage


def test_durations() -> None:
    assert Duration().convert("90s", None, None) == 90
    assert Duration().convert("2h", None, None) == 7200
    with pytest.raises(click.BadParameter, match="invalid duration"):
        Duration().convert("soon", None, None)


@pytest.mark.parametrize(
    ("text", "sign", "offset"),
    [("+10m", -1, 600), ("-10m", +1, -600), ("10m", +1, 600), ("10m", -1, -600), ("90", 1, 90)],
)
def test_relative_times(text: str, sign: int, offset: float) -> None:
    got = When(sign).convert(text, None, None)
    expected = datetime.now(UTC) + timedelta(seconds=offset)
    assert abs((got - expected).total_seconds()) < 5


def test_absolute_times_are_utc_when_naive() -> None:
    assert When(1).convert("2024-01-15T10:30:00Z", None, None) == datetime(
        2024, 1, 15, 10, 30, tzinfo=UTC
    )
    assert When(1).convert("2024-01-15T10:30:00", None, None).tzinfo is UTC
    with pytest.raises(click.BadParameter, match="neither an RFC 3339 time"):
        When(1).convert("next tuesday", None, None)


def test_file_table_aligns_columns() -> None:
    found = [JobFile("a.txt", 5, "ab" * 32, "t"), JobFile("deep/b.bin", 12345, "cd" * 32, "t")]
    assert file_table(found).splitlines() == [
        "PATH         SIZE  SHA256",
        f"a.txt           5  {'ab' * 32}",
        f"deep/b.bin  12345  {'cd' * 32}",
    ]
    assert file_table([]) == "No files"


class ListingClient:
    calls: list[tuple[str, dict[str, Any]]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def jobs(self) -> list[Job]:
        self.calls.append(("jobs", {}))
        return [Job(id="old", status="COMPLETED", command="true")]

    def iter_jobs(self, **query: Any) -> list[Job]:
        self.calls.append(("iter_jobs", query))
        return [Job(id="new", status="RUNNING", command="sleep", args=("1",))]

    def list_jobs(self, **query: Any) -> JobPage:
        self.calls.append(("list_jobs", query))
        return JobPage(jobs=(Job(id="p1", status="QUEUED", command="x"),), next_page_token="7")

    def close(self) -> None:
        pass


@pytest.fixture
def listing_client(monkeypatch: pytest.MonkeyPatch) -> type[ListingClient]:
    ListingClient.calls = []
    monkeypatch.setattr(state_module, "Client", ListingClient)
    return ListingClient


def test_plain_list_is_the_seeds_call(listing_client: type[ListingClient]) -> None:
    result = CliRunner().invoke(cli, ["list"])
    assert result.output == "old COMPLETED StartTime:  Command: true\n"
    assert listing_client.calls == [("jobs", {})]


def test_filters_list_every_matching_job(listing_client: type[ListingClient]) -> None:
    result = CliRunner().invoke(
        cli, ["list", "--status", "running,QUEUED", "--label", "a=b", "--owner", "alice"]
    )
    assert result.exit_code == 0, result.output
    name, query = listing_client.calls[0]
    assert name == "iter_jobs"
    assert query["status"] == ["running", "QUEUED"]
    assert (query["labels"], query["owner"]) == ({"a": "b"}, "alice")


def test_limit_lists_one_page_and_tells_the_next_token(
    listing_client: type[ListingClient],
) -> None:
    result = CliRunner().invoke(cli, ["list", "--limit", "1", "--since", "2h", "--json"])
    assert result.exit_code == 0, result.output
    name, query = listing_client.calls[0]
    assert (name, query["page_size"], query["page_token"]) == ("list_jobs", 1, "")
    assert query["created_after"] < datetime.now(UTC) - timedelta(minutes=119)
    assert "More jobs: --page-token 7" in result.stderr


def test_a_bad_label_is_a_usage_error(listing_client: type[ListingClient]) -> None:
    result = CliRunner().invoke(cli, ["list", "--label", "nolabel"])
    assert result.exit_code == 2
    assert "expected KEY=VALUE" in result.output
