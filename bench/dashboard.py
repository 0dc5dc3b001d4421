"""The dashboard and /metrics against one real server, each beside its baseline in the same run.

- pages: sequential p50/p99 of the signed-in jobs page (``GET /``, 25 rows rendered from
  Jinja2) next to ``GET /api/jobs/browse?itemsPerPage=25`` (the same jobs as JSON);
- metrics: p50/p99 of a ``GET /metrics`` scrape with JOBS jobs in the store, next to
  ``GET /api/jobs/retrieve`` of one job (the cheapest authenticated call);
- live: from a Stop button's POST to the job page's WebSocket showing STOPPED, next to the
  same stop seen by an API ``jobs.follow`` client (one job each, ROUNDS rounds).

    sudo .venv/bin/python bench/dashboard.py [--jobs 2000] [--requests 200] [--rounds 20]
"""

from __future__ import annotations

import argparse
import json
import re
import ssl
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from websockets.sync.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import BenchServer, bench_server, free_port


def config(http_port: int) -> str:
    return f"""
joblet: {{maxConcurrentJobs: 200}}
http: {{listen: "127.0.0.1:{http_port}"}}
"""


def percentiles(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return f"p50 {statistics.median(ms):7.2f} ms   p99 {p99:7.2f} ms"


def timed(count: int, call: Callable[[], object]) -> list[float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def token(server: BenchServer) -> str:
    made = subprocess.run(
        [sys.executable, "-m", "jobyard", "tokens", "create", "--data-dir",
         str(server.certs.parent / "data"), "--name", "admin", "--role", "admin"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return made.stdout.strip()


def fill(server: BenchServer, jobs: int) -> None:
    """``jobs`` finished jobs in the store (8 submitting threads, each its own channel)."""

    def submit(count: int) -> None:
        with server.new_client() as client:
            for _ in range(count):
                client.submit("true")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(submit, [jobs // 8 + (1 if i < jobs % 8 else 0) for i in range(8)]))
    for job in server.client.jobs():
        server.client.wait(job.id, timeout=60)


def sign_in(base: str, context: ssl.SSLContext, bearer: str) -> tuple[httpx.Client, str]:
    browser = httpx.Client(base_url=base, verify=context, timeout=60, headers={"Origin": base})
    browser.post("/ui/login", data={"token": bearer})
    match = re.search(r'name="csrf-token" content="([^"]+)"', browser.get("/").text)
    assert match, "sign-in failed"
    return browser, match.group(1)


def until(ws: ClientConnection, done: Callable[[dict[str, object]], bool]) -> None:
    while not done(json.loads(ws.recv(60))):
        pass


def stopped_on_page(message: dict[str, object]) -> bool:
    job = message.get("job")
    return isinstance(job, dict) and job.get("status") == "STOPPED"


def stopped_on_follow(message: dict[str, object]) -> bool:
    payload = message.get("payload")
    status = payload.get("newStatus") if isinstance(payload, dict) else None
    return isinstance(status, dict) and status.get("state") == "SUCCESS"


def bench_live(server: BenchServer, port: int, browser: httpx.Client, csrf: str, bearer: str,
               context: ssl.SSLContext, rounds: int) -> None:  # fmt: skip
    page, api = [], []
    cookie = f"jobyard_session={browser.cookies['jobyard_session']}"
    origin = f"https://localhost:{port}"
    for _ in range(rounds):
        job = server.client.submit("sleep", ["300"])
        with connect(f"wss://localhost:{port}/ui/live", ssl=context,
                     additional_headers={"Cookie": cookie, "Origin": origin}) as ws:  # fmt: skip
            ws.send(json.dumps({"watch": "job", "id": job.id}))
            until(ws, lambda m: isinstance(m.get("job"), dict)
                  and m["job"]["status"] == "RUNNING")  # type: ignore[index]  # fmt: skip
            start = time.perf_counter()
            browser.post(f"/ui/jobs/{job.id}/stop", json={}, headers={"X-CSRF-Token": csrf})
            until(ws, stopped_on_page)
            page.append(time.perf_counter() - start)
        other = server.client.submit("sleep", ["300"])
        with connect(f"wss://localhost:{port}/api/jobs", ssl=context) as ws:
            ws.send(json.dumps({"call": "jobs.follow", "streamId": "s",
                                "payload": {"id": other.id}, "bearer": bearer}))  # fmt: skip
            until(ws, lambda m: json.dumps(m).find('"state": "RUNNING"') >= 0)
            start = time.perf_counter()
            browser.post("/api/jobs/terminate", json={"items": [{"id": other.id}]},
                         headers={"Authorization": f"Bearer {bearer}"})  # fmt: skip
            until(ws, stopped_on_follow)
            api.append(time.perf_counter() - start)
    print(f"live     Stop button -> page shows STOPPED  {percentiles(page)}")
    print(f"         terminate -> jobs.follow newStatus {percentiles(api)}  (baseline)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    port = free_port()
    with bench_server(config(port)) as server:
        bearer = token(server)
        fill(server, args.jobs)
        base = f"https://localhost:{port}"
        context = ssl.create_default_context(cafile=str(server.certs / "ca-cert.pem"))
        auth = {"Authorization": f"Bearer {bearer}"}
        browser, csrf = sign_in(base, context, bearer)
        with httpx.Client(base_url=base, verify=context, headers=auth, timeout=60) as api:
            one = server.client.jobs()[0].id
            pages = timed(args.requests, lambda: browser.get("/").raise_for_status())
            browse = timed(args.requests, lambda: api.get(
                "/api/jobs/browse", params={"itemsPerPage": 25}).raise_for_status())  # fmt: skip
            print(f"pages    GET / (25 rows)            {percentiles(pages)}")
            print(f"         GET /api/jobs/browse (25)  {percentiles(browse)}  (baseline)")
            scrapes = timed(args.requests, lambda: api.get("/metrics").raise_for_status())
            retrieve = timed(args.requests, lambda: api.get(
                "/api/jobs/retrieve", params={"id": one}).raise_for_status())  # fmt: skip
            print(f"metrics  GET /metrics ({args.jobs} jobs)  {percentiles(scrapes)}")
            print(f"         GET /api/jobs/retrieve     {percentiles(retrieve)}  (baseline)")
            bench_live(server, port, browser, csrf, bearer, context, args.rounds)
        browser.close()


if __name__ == "__main__":
    main()
