"""End to end: the dashboard in real JupyterLab, in headless Chromium, while a burst runs.

Starts ``jupyter lab`` on 127.0.0.1 (a free port, a token, every Jupyter directory in the
test's temp folder), opens a notebook that shows ``lab.dashboard()`` and runs a burst, and
reads the rendered Plotly chart: one y tick label per execution environment, there while the
burst's cell is still running. A screenshot is left in the test's temp folder. Every process
started here (server, kernel, environments, browser) is gone when the test ends.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import descendants

CHROMIUM = "/usr/bin/chromium"
HANDLERS = Path(__file__).parent / "handlers"
LABEL = re.compile(r"^hello-\d+ \(\d+\)$")

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing")

CELLS = [
    f"""\
from lambda_lab import Lab
lab = Lab(account_concurrency=3)
fn = lab.deploy("hello", handler="hello.handler", code_dir={str(HANDLERS)!r},
                timeout=10, idle_timeout=60)
board = lab.dashboard()
board""",
    """\
results = fn.burst(3, {"sleep": 5.0})
print("BURST", sorted(r.outcome for r in results))""",
    """\
print("ENVS", json.dumps(sorted(f"{e.env} ({e.pid})" for e in lab.environments())))""",
    """\
board.close()
lab.close()
print("CLOSED")""",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_notebook(path: Path) -> None:
    cells: list[dict[str, object]] = [
        {
            "cell_type": "code",
            "id": f"cell-{i}",
            "metadata": {},
            "outputs": [],
            "execution_count": None,
            "source": ("import json\n" if i == 0 else "") + src,
        }
        for i, src in enumerate(CELLS)
    ]
    path.write_text(
        json.dumps(
            {
                "cells": cells,
                "metadata": {
                    "kernelspec": {
                        "name": "python3",
                        "display_name": "Python 3",
                        "language": "python",
                    }
                },
                "nbformat": 4,
                "nbformat_minor": 5,
            }
        )
    )


@pytest.fixture
def jupyter(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A JupyterLab server of our own; yields its notebook URL and its folder."""
    root = tmp_path / "root"
    root.mkdir()
    write_notebook(root / "dashboard.ipynb")
    env = dict(os.environ)
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        env[name] = str(tmp_path / name.lower())
    port, token = free_port(), secrets.token_hex(16)
    log = open(tmp_path / "jupyter.log", "w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--allow-root",
            "--no-browser",
            f"--ServerApp.token={token}",
            f"--port={port}",
            "--ip=127.0.0.1",
            "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={root}",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    seen: set[str] = set()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((tmp_path / "jupyter.log").read_text()) from None
                time.sleep(0.25)
        yield f"{base}/lab/tree/dashboard.ipynb?token={token}", tmp_path
        seen.update(descendants(server.pid))
    finally:
        seen.update(descendants(server.pid))  # kernels run in sessions of their own
        server.send_signal(signal.SIGTERM)  # the server shuts its kernels down
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
        for line in seen:  # anything that outlived the server: kill it by pid
            pid = int(line.split()[0])
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if f.read().replace(b"\0", b" ").strip() in line.encode():
                        os.kill(pid, signal.SIGKILL)
            except (FileNotFoundError, ProcessLookupError):
                pass


def test_dashboard_renders_one_row_per_environment_while_the_burst_runs(
    jupyter: tuple[str, Path],
) -> None:
    from playwright.sync_api import sync_playwright

    url, tmp_path = jupyter
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.goto(url)
            page.wait_for_function(
                "() => window.jupyterapp?.shell?.currentWidget?.sessionContext?.session"
                "?.kernel?.status === 'idle'",
                timeout=60_000,
            )
            page.evaluate(  # every cell but the last, which closes the lab
                "() => { const nb = window.jupyterapp.shell.currentWidget.content;"
                " nb.activeCellIndex = 3;"
                " window.jupyterapp.commands.execute('notebook:run-all-above'); }"  # no wait
            )

            timeline = page.locator(".js-plotly-plot", has_text="Execution environments")
            ticks = timeline.locator(".ytick text")

            def labels() -> list[str]:
                return [t.strip() for t in ticks.all_text_contents()]

            def outputs() -> str:
                return " ".join(page.locator(".jp-OutputArea-output").all_text_contents())

            # live: three rows, each "env (pid)", while the burst's cell is still running.
            # One check in the page, so labels and outputs are read at the same instant.
            seen = page.wait_for_function(
                """() => {
                  const plot = [...document.querySelectorAll('.js-plotly-plot')]
                    .find(p => p.textContent.includes('Execution environments'));
                  if (!plot) return false;
                  const labels = [...plot.querySelectorAll('.ytick text')]
                    .map(t => t.textContent.trim());
                  const outputs = [...document.querySelectorAll('.jp-OutputArea-output')]
                    .map(o => o.textContent).join(' ');
                  const ready = labels.length === 3
                    && labels.every(l => /^hello-\\d+ \\(\\d+\\)$/.test(l));
                  return ready || outputs.includes('BURST') ? {labels, outputs} : false;
                }""",
                timeout=60_000,
            ).json_value()
            assert "BURST" not in seen["outputs"], f"the chart only moved after the cell: {seen}"
            assert all(LABEL.match(x) for x in seen["labels"]) and len(seen["labels"]) == 3
            assert timeline.locator(".bars path").count() > 0

            page.wait_for_function(
                "() => [...document.querySelectorAll('.jp-OutputArea-output')]"
                ".some(e => e.textContent.includes('ENVS'))",
                timeout=60_000,
            )
            text = outputs()
            assert "BURST ['success', 'success', 'success']" in text
            envs = json.loads(re.search(r"ENVS (\[.*?\])", text).group(1))  # type: ignore[union-attr]
            time.sleep(0.5)  # one more frame: the bars end
            assert sorted(labels()) == envs  # exactly one row per environment
            console = page.locator(".lambda-lab-console")
            assert "REPORT RequestId" in (console.text_content() or "")
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

            page.evaluate(
                "() => { const nb = window.jupyterapp.shell.currentWidget.content;"
                " nb.activeCellIndex = 3;"
                " return window.jupyterapp.commands.execute('notebook:run-cell'); }"
            )
            page.wait_for_function(
                "() => [...document.querySelectorAll('.jp-OutputArea-output')]"
                ".some(e => e.textContent.includes('CLOSED'))",
                timeout=60_000,
            )
        finally:
            browser.close()
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000
