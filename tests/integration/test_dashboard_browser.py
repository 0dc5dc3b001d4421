"""The dashboard in a real browser (Playwright driving Debian's chromium) against a real
server: sign in, see a running job, watch its output grow without a reload, stop it with
the button (confirming the dialog), see a workflow's graph; no console errors anywhere.

Screenshots are kept under ``tests/artifacts/`` (ignored by git); their paths are printed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, expect, sync_playwright

from jobyard.client import Client
from tests.integration.conftest import ServerThread
from tests.integration.http_support import Http, make_token, wait_state

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
NOT_FOUND_LOGGED = "Failed to load resource: the server responded with a status of 404 (Not Found)"
WAIT_MS = 30_000  # how long an expectation may wait for its event (never a measured time)

WORKFLOW = """
jobs:
  fetch:
    command: "sh"
    args: ["-c", "echo fetched"]
  build:
    command: "sleep"
    args: ["300"]
    requires:
      - fetch: "COMPLETED"
  report:
    command: "sh"
    args: ["-c", "echo report"]
    requires:
      - build: "COMPLETED"
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Watched:
    """A page with its console errors and uncaught exceptions collected."""

    def __init__(self, browser: Browser, http: Http, name: str) -> None:
        # The test CA is not the browser's: the certificate is checked by the other tests.
        self.context = browser.new_context(ignore_https_errors=True,
                                           viewport={"width": 1366, "height": 850})  # fmt: skip
        self.page: Page = self.context.new_page()
        self.base = f"https://localhost:{http.port}"
        self.name = name
        self.errors: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def sign_in(self, token: str) -> None:
        self.page.goto(self.base + "/")
        self.page.get_by_label("Token").fill(token)
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.page.get_by_role("heading", name="Jobs")).to_be_visible(timeout=WAIT_MS)

    def shot(self, label: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{label}.png"
        self.page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def data_dir(http_server: ServerThread) -> Path:
    return http_server.data_dir


def test_sign_in_watch_output_grow_and_stop_the_job(
    browser: Browser, http: Http, data_dir: Path, grpc_admin: Client
) -> None:
    script = "i=0; while true; do i=$((i+1)); echo line $i; sleep 0.2; done"
    job = grpc_admin.submit("sh", ["-c", script], name="ticker")
    admin = make_token(data_dir, "root", "admin")
    wait_state(http, admin, job.id, "RUNNING")
    watched = Watched(browser, http, "stop")
    page = watched.page
    try:
        watched.sign_in(admin)
        row = page.locator(f'tr[data-job-id="{job.id}"]')
        expect(row.locator('[data-field="status"]')).to_have_text("RUNNING", timeout=WAIT_MS)
        expect(row).to_contain_text("ticker")
        grpc_admin.submit("true", name="newcomer")  # after the page was drawn
        expect(page.get_by_role("link", name="1 new job: show")).to_be_visible(timeout=WAIT_MS)
        watched.shot("jobs")
        row.get_by_role("link").click()
        log = page.locator("pre#output-0")
        expect(log).to_contain_text("line 3", timeout=WAIT_MS)
        page.evaluate("window.notReloaded = true")
        expect(log).to_contain_text("line 12", timeout=WAIT_MS)  # grew: pushed, no reload
        assert page.evaluate("window.notReloaded") is True
        watched.shot("job-running")
        questions: list[str] = []

        def confirm(dialog: Dialog) -> None:
            questions.append(dialog.message)
            dialog.accept()

        page.on("dialog", confirm)
        page.get_by_role("button", name="Stop").click()
        status = page.locator('.summary [data-field="status"]')
        expect(status).to_have_text("STOPPED", timeout=WAIT_MS)
        expect(page.get_by_role("button", name="Stop")).to_be_hidden()
        expect(page.get_by_label("Extend by (minutes)")).to_be_hidden()
        assert questions == [f"Stop job {job.id[:8]}?"]
        assert grpc_admin.job(job.id).status == "STOPPED"
        watched.shot("job-stopped")
        assert watched.errors == []
    finally:
        watched.close()


def test_a_declined_confirmation_leaves_the_job_running(
    browser: Browser, http: Http, data_dir: Path, grpc_admin: Client
) -> None:
    job = grpc_admin.submit("sleep", ["300"])
    admin = make_token(data_dir, "root", "admin")
    wait_state(http, admin, job.id, "RUNNING")
    watched = Watched(browser, http, "decline")
    page = watched.page
    try:
        watched.sign_in(admin)
        page.goto(f"{watched.base}/ui/jobs/{job.id}")
        page.on("dialog", lambda dialog: dialog.dismiss())
        page.get_by_role("button", name="Suspend").click()
        expect(page.get_by_role("button", name="Suspend")).to_be_enabled()
        assert grpc_admin.job(job.id).status == "RUNNING"
        assert watched.errors == []
    finally:
        watched.close()


def test_a_workflow_graph_goes_live_and_a_viewer_sees_no_buttons(
    browser: Browser, http: Http, data_dir: Path, grpc_admin: Client
) -> None:
    workflow = grpc_admin.run_workflow(WORKFLOW, "pipeline.yaml").workflow
    viewer = make_token(data_dir, "auditor", "viewer")
    watched = Watched(browser, http, "workflow")
    page = watched.page
    try:
        watched.sign_in(viewer)
        page.goto(f"{watched.base}/ui/workflows/{workflow.id}")
        graph = page.get_by_role("img", name="Jobs of the workflow and their dependencies")
        expect(graph).to_be_visible()
        build = page.locator('g.node[data-name="build"] [data-field="status"]')
        expect(build).to_have_text("RUNNING", timeout=WAIT_MS)  # live, started after load
        expect(page.locator('g.node[data-name="fetch"]')).to_have_class(
            re.compile(r"status-COMPLETED"), timeout=WAIT_MS
        )
        assert page.locator("path.edge").count() == 2
        watched.shot("workflow")
        build_id = next(j.job_id for j in grpc_admin.workflow(workflow.id).jobs
                        if j.name == "build")  # fmt: skip
        grpc_admin.stop(build_id)
        expect(build).to_have_text("STOPPED", timeout=WAIT_MS)  # pushed to the open page
        page.goto(f"{watched.base}/ui/jobs/{build_id}")
        expect(page.locator('.summary [data-field="status"]')).to_have_text("STOPPED")
        assert page.locator("button[data-action]").count() == 0
        assert watched.errors == []
    finally:
        watched.close()


def test_every_page_by_keyboard_without_console_errors(
    browser: Browser, http: Http, data_dir: Path, grpc_admin: Client
) -> None:
    job = grpc_admin.submit("sleep", ["300"], name="keyboard")
    admin = make_token(data_dir, "root", "admin")
    wait_state(http, admin, job.id, "RUNNING")
    watched = Watched(browser, http, "keyboard")
    page = watched.page
    try:
        page.goto(watched.base + "/")
        page.keyboard.type(admin)  # the token field has the focus
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Jobs")).to_be_visible(timeout=WAIT_MS)
        for path, heading in (("/ui/workflows", "Workflows"), ("/ui/wallets", "Wallets")):
            page.goto(watched.base + path)
            expect(page.get_by_role("heading", name=heading)).to_be_visible()
            watched.shot(heading.lower())
        page.goto(f"{watched.base}/ui/jobs/nonexistent")
        expect(page.get_by_role("alert")).to_contain_text("job not found")
        page.goto(f"{watched.base}/ui/jobs/{job.id}")
        expect(page.locator('.summary [data-field="status"]')).to_have_text("RUNNING")
        page.on("dialog", lambda dialog: dialog.accept())
        stop = page.get_by_role("button", name="Stop")
        stop.focus()
        page.keyboard.press("Enter")
        expect(page.locator('.summary [data-field="status"]')).to_have_text(
            "STOPPED", timeout=WAIT_MS
        )
        # The one console error: Chromium's note of the 404 page asked for on purpose above.
        assert watched.errors == [NOT_FOUND_LOGGED]
    finally:
        watched.close()
