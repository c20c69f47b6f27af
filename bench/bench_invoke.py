"""Invoke path benchmarks: warm latency, cold-start overhead, throughput.

Prints figures and ratios against references measured in the same run; asserts nothing
(timings on shared machines are noisy). Run: ``python bench/bench_invoke.py``.

* warm invoke p50/p99 for a no-op handler, through the Python API and through the HTTP Invoke
  API, next to a plain tornado GET round trip (target: warm p50 <= 2x the tornado round trip);
* cold-start overhead (process start -> first ``next``), forked from the pre-warmed zygote and
  spawned, next to ``python -c pass`` (target: <= 2x);
* invokes per second with 8 environments busy.
"""

from __future__ import annotations

import asyncio
import http.client
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from lambda_lab import Lab, zygote

HANDLERS = Path(__file__).resolve().parent.parent / "tests" / "handlers"


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def tornado_round_trip(n: int) -> list[float]:
    """A plain tornado GET on its own IOLoop thread, called with keep-alive http.client."""

    class Hello(web.RequestHandler):
        def get(self) -> None:
            self.write("ok")

    loop = asyncio.new_event_loop()
    sockets = bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]

    def serve() -> None:
        asyncio.set_event_loop(loop)
        server = HTTPServer(web.Application([("/", Hello)]))
        server.add_sockets(sockets)
        loop.run_forever()

    threading.Thread(target=serve, daemon=True).start()
    time.sleep(0.1)
    conn = http.client.HTTPConnection("127.0.0.1", port)
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        conn.request("GET", "/")
        conn.getresponse().read()
        samples.append((time.perf_counter() - t) * 1000)
    conn.close()
    loop.call_soon_threadsafe(loop.stop)
    return samples


def warm_invokes(lab: Lab, n: int) -> tuple[list[float], list[float]]:
    fn = lab.deploy("noop", handler="noop.handler", code_dir=str(HANDLERS))
    fn.invoke({})
    api = []
    for _ in range(n):
        t = time.perf_counter()
        fn.invoke({})
        api.append((time.perf_counter() - t) * 1000)
    host, port = lab.endpoint_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port))
    over_http = []
    for _ in range(n):
        t = time.perf_counter()
        conn.request("POST", "/2015-03-31/functions/noop/invocations", body=b"{}")
        conn.getresponse().read()
        over_http.append((time.perf_counter() - t) * 1000)
    conn.close()
    return api, over_http


def cold_overheads(lab: Lab, n: int) -> list[float]:
    """Process start -> first `next` (runtime_ms of env.init.end), one fresh env each time."""
    fn = lab.deploy("cold", handler="hello.handler", code_dir=str(HANDLERS), idle_timeout=600)
    before = len(lab.events.filter("env.init.end"))
    for _ in range(n):
        fn.burst(1, {})
        fn.update(timeout=3)  # keep config; force new envs by killing the idle one
        for env in fn.environments():
            lab.kill(env.env)
        deadline = time.monotonic() + 5
        while fn.environments() and time.monotonic() < deadline:
            time.sleep(0.005)
    return [e.get("runtime_ms") for e in lab.events.filter("env.init.end")[before:]]


def python_c_pass(n: int) -> list[float]:
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        samples.append((time.perf_counter() - t) * 1000)
    return samples


def throughput(lab: Lab, seconds: float = 3.0, workers: int = 8) -> float:
    fn = lab.deploy("tput", handler="hello.handler", code_dir=str(HANDLERS))
    fn.burst(workers, {"sleep": 0.2})  # eight warm environments
    count = [0] * workers
    stop = time.monotonic() + seconds

    def work(i: int) -> None:
        while time.monotonic() < stop:
            fn.invoke({})
            count[i] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(fn.environments()) <= workers + 1
    return sum(count) / seconds


def main() -> None:
    n = 500
    ref = tornado_round_trip(n)
    ref_p50 = statistics.median(ref)
    print(f"tornado GET round trip     p50 {ref_p50:6.3f} ms   p99 {pct(ref, 99):6.3f} ms")
    with Lab() as lab:
        api, over_http = warm_invokes(lab, n)
        for name, s in (("warm invoke (Python API)", api), ("warm invoke (HTTP API)  ", over_http)):
            p50 = statistics.median(s)
            print(
                f"{name}   p50 {p50:6.3f} ms   p99 {pct(s, 99):6.3f} ms   "
                f"p50 ratio {p50 / ref_p50:4.2f}x (target <= 2x)"
            )
        pc = python_c_pass(20)
        pc_p50 = statistics.median(pc)
        print(f"python -c pass             p50 {pc_p50:6.2f} ms")
        cold = cold_overheads(lab, 20)
        label = "forked from zygote" if zygote.available() else "spawned"
        print(
            f"cold overhead ({label}) p50 {statistics.median(cold):6.2f} ms   "
            f"ratio {statistics.median(cold) / pc_p50:4.2f}x (target <= 2x)"
        )
        print(f"invokes/s with 8 environments: {throughput(lab):7.0f}")
    # The spawn fallback, for comparison (what non-Linux hosts get).
    zygote_available = zygote.available
    zygote.available = lambda: False  # type: ignore[assignment]
    try:
        with Lab() as lab:
            cold = cold_overheads(lab, 10)
        print(
            f"cold overhead (spawned python -m lambda_lab.runtime) p50 "
            f"{statistics.median(cold):6.2f} ms   ratio {statistics.median(cold) / pc_p50:4.2f}x"
        )
    finally:
        zygote.available = zygote_available  # type: ignore[assignment]


if __name__ == "__main__":
    main()
