"""The dashboard's pages: sign-in, the jobs table, a job, workflows, wallets."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Query, Request
from starlette.responses import RedirectResponse, Response

from jobyard.domain.access import Identity, authorize, scope
from jobyard.domain.errors import InvalidArgument, JobyardError, Unauthenticated
from jobyard.domain.status import Status
from jobyard.http.dashboard.graph import Vertex, layout
from jobyard.http.dashboard.rendering import ACTIONS, allowed, job_row, secured
from jobyard.http.dashboard.sessions import COOKIE, check_csrf, check_same_origin, cookie_header
from jobyard.http.dashboard.state import dashboard_of, signed_in, to_sign_in
from jobyard.http.face import HttpFace
from jobyard.store.base import JobQuery

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 25
MAX_WALLETS = 1000
MAX_FORM_BYTES = 4096
Text = Annotated[str, Query(max_length=256)]


async def form_field(request: Request, name: str) -> str:
    """One field of an urlencoded form body (bounded; the body limit applies first)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise InvalidArgument(f"form too large: at most {MAX_FORM_BYTES} bytes")
    values = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=8)
    return values.get(name, [""])[0]


@router.post("/ui/login")
async def login(request: Request) -> Response:
    dashboard = dashboard_of(request)
    try:
        check_same_origin(request)
        secret = await form_field(request, "token")
        if not secret.strip():
            raise Unauthenticated("enter a token (from `jobyard tokens create`)")
        session_id, _ = dashboard.sessions.sign_in(secret)
    except JobyardError as exc:
        return dashboard.pages.render("login.html", {"why": str(exc)}, 401)
    response = RedirectResponse("/", status_code=303)
    response.headers["Set-Cookie"] = cookie_header(session_id)
    return secured(response)


@router.post("/ui/logout")
async def logout(request: Request) -> Response:
    who = signed_in(request)
    if who is not None:
        check_csrf(who[0], await form_field(request, "csrf"))
        dashboard_of(request).sessions.sign_out(request.cookies.get(COOKIE, ""))
    response = to_sign_in()
    response.headers["Set-Cookie"] = cookie_header("", max_age=0)
    return response


class JobFilters:
    """The jobs table's filters: status, owner, one label ``key=value``; and the page."""

    def __init__(
        self, status: Text = "", owner: Text = "", label: Text = "", next: Text = ""
    ) -> None:
        if status and status not in {s.value for s in Status}:
            raise InvalidArgument(f"invalid status {status!r}")
        key, sep, value = label.partition("=")
        if label and (not sep or not key.strip()):
            raise InvalidArgument(f"invalid label filter {label!r}: use KEY=VALUE")
        self.status, self.owner, self.label, self.next = status, owner.strip(), label, next
        self.labels = {key.strip(): value.strip()} if label else {}

    def query(self) -> JobQuery:
        statuses = frozenset({Status(self.status)}) if self.status else frozenset()
        return JobQuery(statuses=statuses, owner=self.owner, labels=self.labels,
                        page_size=PAGE_SIZE, page_token=self.next)  # fmt: skip

    def link(self, next_token: str) -> str:
        """The URL of the page after this one, with the same filters."""
        params = {"status": self.status, "owner": self.owner, "label": self.label}
        params = {k: v for k, v in params.items() if v}
        return "/?" + urlencode({**params, "next": next_token})


@router.get("/")
async def jobs_page(
    request: Request, status: Text = "", owner: Text = "", label: Text = "", next: Text = ""
) -> Response:
    dashboard = dashboard_of(request)
    who = signed_in(request)
    if who is None:
        return dashboard.pages.render("login.html", {"why": ""})
    try:
        filters = JobFilters(status, owner, label, next)
        jobs, token = dashboard.face.engine.query(who[1], filters.query())
    except JobyardError as exc:
        return dashboard.error(who, exc)
    context = {
        "jobs": [job_row(job) for job in jobs],
        "filters": filters,
        "statuses": [s.value for s in Status],
        "next_link": filters.link(token) if token else "",
        "first_link": "/" if next else "",
        # Only the newest, unfiltered page tells of jobs submitted since it was drawn.
        "announce_new": not (next or status or owner or label),
    }
    return dashboard.page("jobs.html", who, context)


@router.get("/ui/jobs/{job_id}")
async def job_page(request: Request, job_id: str) -> Response:
    dashboard = dashboard_of(request)
    who = signed_in(request)
    if who is None:
        return to_sign_in()
    try:
        context = await _job_context(dashboard.face, who[1], job_id)
    except JobyardError as exc:
        return dashboard.error(who, exc)
    return dashboard.page("job.html", who, context)


async def _job_context(face: HttpFace, identity: Identity, job_id: str) -> dict[str, Any]:
    job = face.job(identity, job_id[:64], "get_job")
    details = await face.engine.details(identity, job.id)
    files = (
        await face.engine.list_files(identity, job.id) if allowed(identity, "list_files") else []
    )
    charges = face.ledger.charges(job.id) if face.ledger is not None else []
    buttons = [name for name, (op, _) in ACTIONS.items() if allowed(identity, op)]
    return {
        "job": job,
        "row": job_row(job),
        "usage": details.usage,
        "output_bytes": details.output_bytes,
        "ranks": list(range(job.spec.replicas)),
        "files": files,
        "charges": charges,
        "buttons": buttons,
        "labels": sorted(job.spec.labels.items()),
    }


@router.get("/ui/workflows")
async def workflows_page(request: Request) -> Response:
    dashboard = dashboard_of(request)
    who = signed_in(request)
    if who is None:
        return to_sign_in()
    runner = dashboard.face.workflows
    try:
        authorize(who[1], "list_workflows")
        records = runner.workflows(who[1]) if runner is not None else []
    except JobyardError as exc:
        return dashboard.error(who, exc)
    return dashboard.page("workflows.html", who, {"workflows": list(reversed(records))})


@router.get("/ui/workflows/{workflow_id}")
async def workflow_page(request: Request, workflow_id: str) -> Response:
    dashboard = dashboard_of(request)
    who = signed_in(request)
    if who is None:
        return to_sign_in()
    runner = dashboard.face.workflows
    try:
        if runner is None:
            raise InvalidArgument("workflows are not served here")
        authorize(who[1], "get_workflow_jobs")
        record = runner.workflow(who[1], workflow_id[:64])
        views = runner.jobs_of(record)
    except JobyardError as exc:
        return dashboard.error(who, exc)
    vertices = [Vertex(v.name, v.job.id if v.job else "", v.status, v.dependencies)
                for v in views]  # fmt: skip
    context = {"workflow": record, "views": views, "graph": layout(vertices)}
    return dashboard.page("workflow.html", who, context)


@router.get("/ui/wallets")
async def wallets_page(request: Request) -> Response:
    dashboard = dashboard_of(request)
    who = signed_in(request)
    if who is None:
        return to_sign_in()
    ledger = dashboard.face.ledger
    try:
        authorize(who[1], "list_wallets")
        limits = scope(who[1])  # as GET /api/accounting/wallets: a user sees its own
        owner = None if limits is None else limits.owner
        wallets = [] if ledger is None else ledger.wallets(owner=owner)[:MAX_WALLETS]
    except JobyardError as exc:
        return dashboard.error(who, exc)
    return dashboard.page("wallets.html", who, {"wallets": wallets})
