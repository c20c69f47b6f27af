"""End to end: the dashboard in real JupyterLab, in headless Chromium.

Each test starts ``jupyter lab`` on 127.0.0.1 (a free port, a token, every Jupyter directory in
the test's temp folder, Jupyter news turned off) and drives it with Chromium:

- a generated notebook shows ``lab.dashboard()`` and runs a burst; the rendered Plotly chart has
  one y tick label per execution environment, there while the burst's cell is still running;
- a copy of the first lesson, ``notebooks/00-tour.ipynb`` (with its ``handlers/``), runs top to
  bottom with Run > Run All Cells: no cell fails, and its dashboard shows one row per
  environment the lesson created. Its screenshot is the README's picture: set
  ``LAMBDA_LAB_SCREENSHOT=docs/dashboard.png`` to write it there too.

Screenshots are left in the test's temp folder. Every process started here (server, kernel,
environments, browser) is gone when the test ends. The server and the browser are per test,
not per module: conftest checks after every test that no process outlived it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import descendants

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = "/usr/bin/chromium"
HANDLERS = Path(__file__).parent / "handlers"
NOTEBOOKS = Path(__file__).parent.parent / "notebooks"
TOUR = "notebooks/00-tour.ipynb"
SCREENSHOT_ENV = "LAMBDA_LAB_SCREENSHOT"
# No "Would you like to get notified about official Jupyter news?" toast, no update check.
SETTINGS = {
    "@jupyterlab/apputils-extension:notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
    }
}
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


class Jupyter:
    """A running JupyterLab server: ``url(path)`` opens a notebook, ``tmp_path`` holds its logs."""

    def __init__(self, base: str, token: str, tmp_path: Path) -> None:
        self.base, self.token, self.tmp_path = base, token, tmp_path

    def url(self, notebook: str) -> str:
        return f"{self.base}/lab/tree/{notebook}?token={self.token}"


@pytest.fixture
def jupyter(tmp_path: Path) -> Iterator[Jupyter]:
    """A JupyterLab server of our own on a temp root: ``dashboard.ipynb`` and a copy of
    ``notebooks/`` (lessons and their handlers; the repository's copy is never touched)."""
    root = tmp_path / "root"
    root.mkdir()
    write_notebook(root / "dashboard.ipynb")
    shutil.copytree(
        NOTEBOOKS, root / "notebooks", ignore=shutil.ignore_patterns("__pycache__", ".ipynb_*")
    )
    env = dict(os.environ)
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        env[name] = str(tmp_path / name.lower())
    labconfig = tmp_path / "jupyter_config_dir" / "labconfig"
    labconfig.mkdir(parents=True)
    (labconfig / "default_setting_overrides.json").write_text(json.dumps(SETTINGS))
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
        yield Jupyter(base, token, tmp_path)
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


@contextmanager
def chromium(width: int, height: int) -> Iterator[Page]:
    """A page of a headless Chromium of our own, closed (browser and driver) on the way out."""
    from playwright.sync_api import sync_playwright

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
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()


def open_notebook(page: Page, url: str) -> None:
    """Open a notebook in JupyterLab and wait until its kernel is up and idle."""
    page.goto(url)
    page.wait_for_function(
        "() => window.jupyterapp?.shell?.currentWidget?.sessionContext?.session"
        "?.kernel?.status === 'idle'",
        timeout=60_000,
    )


def test_dashboard_renders_one_row_per_environment_while_the_burst_runs(
    jupyter: Jupyter,
) -> None:
    tmp_path = jupyter.tmp_path
    with chromium(1400, 1800) as page:
        open_notebook(page, jupyter.url("dashboard.ipynb"))
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
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000


def test_tour_runs_in_jupyterlab_and_draws_one_row_per_environment(jupyter: Jupyter) -> None:
    """The first lesson, Run > Run All Cells: every cell runs, none fails, the chart is drawn."""
    shot = jupyter.tmp_path / "tour.png"
    with chromium(1400, 1000) as page:
        open_notebook(page, jupyter.url(TOUR))
        page.evaluate(  # room for the chart: fold the file browser away before it is drawn
            "() => { if (!window.jupyterapp.shell.leftCollapsed)"
            " return window.jupyterapp.commands.execute('application:toggle-left-area'); }"
        )
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()

        # Done: the kernel is idle and every code cell has run, or a cell failed (Run All
        # stops there). Read from the notebook's model: its outputs, as saved in the file.
        cells = page.wait_for_function(
            """() => {
              const nb = window.jupyterapp.shell.currentWidget;
              const model = nb.content.model.cells;
              const cells = [];
              for (let i = 0; i < model.length; i++) {
                const c = model.get(i);
                if (c.type !== 'code') continue;
                const outputs = [];
                for (let j = 0; j < c.outputs.length; j++) outputs.push(c.outputs.get(j).toJSON());
                cells.push({index: i, count: c.executionCount, outputs});
              }
              const idle = nb.sessionContext.session?.kernel?.status === 'idle';
              const failed = cells.some(c => c.outputs.some(o => o.output_type === 'error'));
              return idle && (failed || cells.every(c => c.count !== null)) ? cells : false;
            }""",
            timeout=60_000,
        ).json_value()
        errors = [
            f"cell {c['index']}: {o['ename']}: {o['evalue']}"
            for c in cells
            for o in c["outputs"]
            if o["output_type"] == "error"
        ]
        assert not errors, errors
        # every cell ran once, in order, in this kernel: no cell left out, none run twice
        assert [c["count"] for c in cells] == list(range(1, len(cells) + 1)), cells
        text = json.dumps([c["outputs"] for c in cells])
        assert "All checks passed" in text  # the lesson's self-check
        # The environments the lesson's calls ran in, as its outputs name them: one cold start,
        # a warm call, then a burst of 5 that reuses the idle one: 5 environments.
        envs = sorted(set(re.findall(r"env=(hello-\d+)", text)))
        assert len(envs) == 5, text
        first_pid = re.search(r"'message': 'Hello, Ada!', 'pid': (\d+)", text)
        assert first_pid, text

        # The chart, still drawn after the last cell's lab.close(): one row per environment.
        timeline = page.locator(".js-plotly-plot", has_text="Execution environments")
        timeline.scroll_into_view_if_needed(timeout=10_000)
        labels = page.wait_for_function(
            """(envs) => {
              const plot = [...document.querySelectorAll('.js-plotly-plot')]
                .find(p => p.textContent.includes('Execution environments'));
              const labels = plot ? [...plot.querySelectorAll('.ytick text')]
                .map(t => t.textContent.trim()) : [];
              const names = labels.map(l => l.split(' ')[0]).sort();
              return JSON.stringify(names) === JSON.stringify(envs) ? labels : false;
            }""",
            arg=envs,
            timeout=15_000,
        ).json_value()
        assert all(LABEL.match(x) for x in labels), labels
        assert len({x.split()[1] for x in labels}) == len(envs), labels  # a process each
        assert f"hello-1 ({first_pid.group(1)})" in labels  # the first call's env and pid
        assert timeline.locator(".bars path").count() >= len(envs)
        console = page.locator(".lambda-lab-console")
        assert "REPORT RequestId" in (console.text_content() or "")

        # The picture: the dashboard's cell at the top (controls, timeline, console).
        page.locator(".jp-CodeCell", has=timeline).evaluate(
            "e => e.scrollIntoView({block: 'start'})"
        )
        page.wait_for_timeout(500)  # let the scroll paint
        page.screenshot(path=str(shot))

        # No panel of the dashboard failed to draw: the widgets print tracebacks to stderr
        # (not in the notebook's model); warnings on stderr are fine.
        tracebacks = page.evaluate(
            """() => [...document.querySelectorAll(
                '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
              .map(e => e.textContent).filter(t => t.includes('Traceback'))"""
        )
        assert not tracebacks, "\n".join(tracebacks)
    assert shot.stat().st_size > 10_000
    target = os.environ.get(SCREENSHOT_ENV)
    if target:  # e.g. docs/dashboard.png, the README's picture
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)
