"""Shared fixtures: a real Lab (real tornado server, real processes), closed after each test."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lambda_lab import Lab

HANDLERS = Path(__file__).parent / "handlers"


@pytest.fixture
def handlers() -> Path:
    return HANDLERS


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab(account_concurrency=50) as lab:
        yield lab


@pytest.fixture
def hello(lab: Lab):
    return lab.deploy("hello", handler="hello.handler", code_dir=str(HANDLERS))


def descendants(root: int) -> list[str]:
    """Command lines of every live process below ``root`` in the process tree."""
    out = subprocess.run(
        ["ps", "-eo", "pid=,ppid=,stat=,args="], capture_output=True, text=True
    ).stdout
    children: dict[int, list[tuple[int, str]]] = {}
    for line in out.splitlines():
        pid, ppid, stat, *args = line.split(None, 3)
        if not stat.startswith("Z"):
            children.setdefault(int(ppid), []).append((int(pid), " ".join(args)))
    found, todo = [], [root]
    while todo:
        for pid, args in children.get(todo.pop(), []):
            if "ps -eo" not in args:
                found.append(f"{pid} {args}")
                todo.append(pid)
    return found


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    """Every test must clean up the processes it started: none may outlive it."""
    yield
    leftovers = descendants(os.getpid())
    assert not leftovers, f"processes left behind: {leftovers}"
