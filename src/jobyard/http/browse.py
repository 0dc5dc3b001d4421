"""``GET /api/jobs/browse``: UCloud's filters and PageV2 paging over the engine's query."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Query

from jobyard.domain.access import SYSTEM, Identity
from jobyard.domain.errors import InvalidArgument
from jobyard.domain.jobs import Job
from jobyard.domain.status import Status
from jobyard.engine import JobEngine
from jobyard.http.views import UCLOUD_STATES, ucloud_state
from jobyard.store.base import JobQuery

MAX_ITEMS_PER_PAGE = 250
DEFAULT_ITEMS_PER_PAGE = 50
MAX_EPOCH_MILLIS = 253402300799999  # 9999-12-31T23:59:59.999Z
MAX_FILTER_IDS = 100
_SCAN_PAGE = 1000
Millis = Annotated[int | None, Query(ge=0, le=MAX_EPOCH_MILLIS)]
Text = Annotated[str | None, Query(max_length=256)]

# UCloud state -> the native statuses it may come from (STOPPED is then told apart).
_NATIVE: dict[str, frozenset[Status]] = {
    "IN_QUEUE": frozenset({Status.SCHEDULED, Status.QUEUED, Status.INITIALIZING}),
    "RUNNING": frozenset({Status.RUNNING, Status.STOPPING}),
    "SUSPENDED": frozenset({Status.SUSPENDED}),
    "SUCCESS": frozenset({Status.COMPLETED, Status.STOPPED}),
    "FAILURE": frozenset({Status.FAILED}),
    "EXPIRED": frozenset({Status.STOPPED}),
}


class BrowseFilters:
    """Query parameters of browse (UCloud's JobIncludeFlags filters and PageV2 paging)."""

    def __init__(
        self,
        itemsPerPage: Annotated[int, Query(ge=1, le=MAX_ITEMS_PER_PAGE)] = DEFAULT_ITEMS_PER_PAGE,
        next: Annotated[str | None, Query(max_length=32)] = None,
        filterState: Text = None,
        filterApplication: Text = None,
        filterCreatedBy: Text = None,
        filterCreatedAfter: Millis = None,
        filterCreatedBefore: Millis = None,
        filterProductId: Text = None,
        filterProductCategory: Text = None,
        filterProvider: Text = None,
        filterIds: Annotated[str | None, Query(max_length=64 * MAX_FILTER_IDS)] = None,
    ) -> None:
        if filterState is not None and filterState not in UCLOUD_STATES:
            raise InvalidArgument(
                f"invalid filterState {filterState!r}: use one of {', '.join(UCLOUD_STATES)}"
            )
        self.itemsPerPage = itemsPerPage
        self.next = next or ""
        self.state = filterState
        self.created_by = filterCreatedBy or ""
        self.created_after = _time(filterCreatedAfter)
        self.created_before = _time(filterCreatedBefore)
        labels = {
            "ucloud.application": filterApplication,
            "ucloud.product": filterProductId,
            "ucloud.category": filterProductCategory,
            "ucloud.provider": filterProvider,
        }
        self.labels = {key: value for key, value in labels.items() if value}  # fmt: skip
        ids = [i.strip() for i in (filterIds or "").split(",") if i.strip()]
        if len(ids) > MAX_FILTER_IDS:
            raise InvalidArgument(f"invalid filterIds: more than {MAX_FILTER_IDS} ids")
        self.ids = frozenset(ids)

    def query(self, page_token: str, page_size: int) -> JobQuery:
        return JobQuery(
            statuses=_NATIVE[self.state] if self.state else frozenset(),
            labels=self.labels,
            owner=self.created_by,
            created_after=self.created_after,
            created_before=self.created_before,
            page_size=page_size,
            page_token=page_token,
        )

    def admits(self, job: Job) -> bool:
        return (self.state is None or ucloud_state(job.status, job.reason) == self.state) and (
            not self.ids or job.id in self.ids
        )


def browse_page(
    engine: JobEngine, caller: Identity, filters: BrowseFilters
) -> tuple[list[Job], str]:
    """Up to ``itemsPerPage`` jobs the caller sees that match, newest first, and the token
    of the next page ("" at the end). Pages of the store are read until the page is full,
    so that filters the store cannot apply never leave a page short while more exist."""
    wanted, token = filters.itemsPerPage, filters.next
    items: list[Job] = []
    while len(items) < wanted:
        jobs, next_token = engine.query(caller, filters.query(token, wanted - len(items)))
        items += [job for job in jobs if filters.admits(job)]
        token = next_token
        if not token:
            break
    return items, token


def matching(engine: JobEngine, statuses: frozenset[Status]) -> list[Job]:
    """Every job in one of ``statuses``, whoever owns it (read page by page): the load of
    the server, which utilization reports without showing the jobs themselves."""
    out: list[Job] = []
    token = ""
    while True:
        jobs, token = engine.query(
            SYSTEM, JobQuery(statuses=statuses, page_size=_SCAN_PAGE, page_token=token)
        )
        out += jobs
        if not token:
            return out


def _time(millis: int | None) -> datetime | None:
    return None if millis is None else datetime.fromtimestamp(millis / 1000, UTC)
