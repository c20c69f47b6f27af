"""A burst of 1,000 concurrent invocations: 1,000 environments, 1,000 answers, nothing lost.

AWS scales one function by up to 1,000 environments every 10 seconds, so the target is to
serve the whole burst within 10 s, in at most 10 GB of memory (the lab process plus every
runtime process, proportional set size, sampled every 250 ms). Prints figures; asserts
only that nothing was lost.
Run: ``python bench/bench_burst.py [N]``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

from lambda_lab import Lab

HANDLERS = Path(__file__).resolve().parent.parent / "tests" / "handlers"


def tree_pss_bytes(root: int) -> int:
    """Memory of ``root`` and all its descendants (Linux /proc).

    Proportional set size: a page shared by N processes (forked runtimes share most of theirs
    with the zygote) counts 1/N for each, so the sum is the real memory used, unlike RSS.
    """
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            parents[int(entry)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    children: dict[int, list[int]] = {}
    for child, parent in parents.items():
        children.setdefault(parent, []).append(child)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            pass
        todo.extend(children.get(pid, []))
    return total


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.25):
            peak[0] = max(peak[0], tree_pss_bytes(os.getpid()))

    with Lab(account_concurrency=n) as lab:
        fn = lab.deploy("burst", handler="hello.handler", code_dir=str(HANDLERS))
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t0 = time.perf_counter()
        results = fn.burst(n, {"sleep": 1.0})
        elapsed = time.perf_counter() - t0
        done.set()
        sampler.join()
        ok = sum(r.ok for r in results)
        outcomes: dict[str, int] = {}
        for r in results:
            key = r.outcome + (f" {r.error_type}: {r.error_message}"[:120] if not r.ok else "")
            outcomes[key] = outcomes.get(key, 0) + 1
        print("outcomes:", outcomes)
        envs = len({r.env for r in results})
        inits = [e.get("init_ms") for e in lab.events.filter("env.init.end")]
        print(
            f"burst of {n}: {ok} answers, {envs} environments, served in {elapsed:.2f} s "
            f"(handler sleeps 1.0 s; target <= 10 s)"
        )
        print(
            f"peak memory (lab + all runtimes): {peak[0] / 2**30:.2f} GiB (target <= 10 GB), "
            f"{peak[0] / n / 2**20:.1f} MiB per environment"
        )
        inits.sort()
        print(f"init p50 {inits[len(inits) // 2]:.1f} ms, max {inits[-1]:.1f} ms")
        assert ok == n and envs == n, "invocations were lost"
        t0 = time.perf_counter()
    print(f"closing {n} environments took {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
