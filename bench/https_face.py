"""The HTTPS face next to the gRPC face, measured in one run against one real server.

- requests: sequential p50/p99 latency of HTTPS ``POST /api/jobs`` (create from the
  catalog) and ``GET /api/jobs/retrieve`` next to the SDK's gRPC ``submit`` and ``job``;
- follow: N WebSocket ``jobs.follow`` clients of one job writing SIZE bytes, aggregate MB/s
  until each has its final response, next to N gRPC log followers of another such job.

    sudo .venv/bin/python bench/https_face.py [--requests 200] [--followers 20] [--bytes 20M]
"""

from __future__ import annotations

import argparse
import json
import ssl
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from websockets.sync.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import BenchServer, bench_server, free_port

APP = {"name": "writer", "version": "1"}
PRODUCT = {"id": "bench", "category": "bench", "provider": "bench"}


def config(http_port: int) -> str:
    return f"""
joblet: {{maxConcurrentJobs: 1000}}
jobyard: {{maxOutputBytes: 0}}
http: {{listen: "127.0.0.1:{http_port}"}}
ucloud:
  providerId: bench
  products:
    - {{name: bench, category: {{name: bench, provider: bench}}, cpu: 1, memoryInGigs: 1,
       pricePerUnit: 0, freeToUse: true}}
  applications:
    - metadata: {{name: writer, version: "1", title: Writer}}
      invocation:
        tool:
          name: writer
          version: "1"
          tool: {{description: {{info: {{name: writer, version: "1"}}, backend: NATIVE}}}}
        invocation:
          - {{type: word, word: sh}}
          - {{type: word, word: "-c"}}
          - {{type: var, variableNames: [script]}}
        parameters:
          - {{type: text, name: script, optional: false}}
"""


def percentiles(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return f"p50 {statistics.median(ms):7.2f} ms   p99 {p99:7.2f} ms"


def timed(count: int, call: Callable[[int], object]) -> list[float]:
    samples = []
    for i in range(count):
        start = time.perf_counter()
        call(i)
        samples.append(time.perf_counter() - start)
    return samples


def token(server: BenchServer) -> str:
    made = subprocess.run(
        [sys.executable, "-m", "jobyard", "tokens", "create", "--data-dir",
         str(server.certs.parent / "data"), "--name", "admin", "--role", "admin"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return made.stdout.strip()


def create_item(script: str) -> dict[str, object]:
    return {"application": APP, "product": PRODUCT, "allowDuplicateJob": True,
            "parameters": {"script": {"type": "text", "value": script}}}  # fmt: skip


def bench_requests(server: BenchServer, web: httpx.Client, count: int) -> None:
    body = {"items": [create_item("true")]}
    ids: list[str] = []
    https_create = timed(count, lambda _: ids.append(
        web.post("/api/jobs", json=body).json()["responses"][0]["id"]))  # fmt: skip
    grpc_submit = timed(count, lambda _: server.client.submit("true"))
    https_get = timed(count, lambda i: web.get("/api/jobs/retrieve", params={"id": ids[i]}))
    grpc_get = timed(count, lambda i: server.client.job(ids[i]))
    print(f"create   HTTPS POST /api/jobs        {percentiles(https_create)}")
    print(f"         gRPC submit (baseline)      {percentiles(grpc_submit)}")
    print(f"retrieve HTTPS GET /api/jobs/retrieve {percentiles(https_get)}")
    print(f"         gRPC job (baseline)         {percentiles(grpc_get)}")


def follow_one(port: int, context: ssl.SSLContext, job_id: str, bearer: str) -> int:
    received = 0
    with connect(f"wss://localhost:{port}/api/jobs", ssl=context, max_size=None) as ws:
        ws.send(json.dumps({"call": "jobs.follow", "streamId": "b",
                            "payload": {"id": job_id}, "bearer": bearer}))  # fmt: skip
        while True:
            message = json.loads(ws.recv(300))
            if message["type"] == "response":
                return received
            received += sum(len(i["stdout"]) for i in message["payload"]["log"])


def fan_out(count: int, run: Callable[[], int]) -> tuple[float, int]:
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(run())) for _ in range(count)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start, sum(results)


def bench_follow(server: BenchServer, web: httpx.Client, port: int, bearer: str,
                 followers: int, size: int) -> None:  # fmt: skip
    context = ssl.create_default_context(cafile=str(server.certs / "ca-cert.pem"))
    script = f"sleep 1; head -c {size} /dev/zero | tr '\\0' a"
    job_id = web.post("/api/jobs", json={"items": [create_item(script)]}).json()["responses"][0][
        "id"
    ]
    seconds, total = fan_out(followers, lambda: follow_one(port, context, job_id, bearer))
    assert total == followers * size, (total, followers * size)
    print(
        f"follow   {followers} WebSocket followers x {size / 1e6:.0f} MB   "
        f"{total / seconds / 1e6:8.1f} MB/s aggregate ({seconds:.1f} s)"
    )
    grpc_job = server.client.submit("sh", ["-c", script])

    def grpc_follow() -> int:
        client = server.new_client()
        try:
            return sum(len(chunk) for chunk in client.logs(grpc_job.id, follow=True))
        finally:
            client.close()

    seconds, total = fan_out(followers, grpc_follow)
    print(
        f"         {followers} gRPC followers (baseline)      "
        f"{total / seconds / 1e6:8.1f} MB/s aggregate ({seconds:.1f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--followers", type=int, default=20)
    parser.add_argument("--bytes", default="20000000", help="bytes the followed job writes")
    args = parser.parse_args()
    port = free_port()
    with bench_server(config(port)) as server:
        bearer = token(server)
        context = ssl.create_default_context(cafile=str(server.certs / "ca-cert.pem"))
        headers = {"Authorization": f"Bearer {bearer}"}
        with httpx.Client(base_url=f"https://localhost:{port}", verify=context,
                          headers=headers, timeout=60) as web:  # fmt: skip
            bench_requests(server, web, args.requests)
            bench_follow(server, web, port, bearer, args.followers, int(args.bytes))


if __name__ == "__main__":
    main()
