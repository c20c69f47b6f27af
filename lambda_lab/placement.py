"""The Placement Service: where a new execution environment runs.

When Lambda needs a new execution environment, its Placement Service picks a worker host with
room for one more microVM, spreading a function's environments across hosts (and Availability
Zones) so that one failing host takes few of them down. Here every "host" is this laptop; the
service names a simulated worker (least loaded first, ties broken in turn) and reserves the
environment's Runtime API endpoint: a listening socket on a free port of 127.0.0.1.

Models: "Lambda execution environments" and the re:Invent talk "A closer look at AWS Lambda"
(frontend, counting, assignment and placement services). Simplified: no capacity limits per host.
"""

from __future__ import annotations

import socket
from collections import Counter
from dataclasses import dataclass

from tornado.netutil import bind_sockets

__all__ = ["PlacementService", "Placement"]


@dataclass(frozen=True, kw_only=True)
class Placement:
    """Where a new environment runs: its (simulated) host and its endpoint socket."""

    host: str
    listener: socket.socket


class PlacementService:
    """Chooses a worker host for each new environment and binds its Runtime API socket."""

    def __init__(self, hosts: int = 4) -> None:
        self.hosts = [f"worker-{i + 1}" for i in range(hosts)]
        self._load: Counter[str] = Counter({h: 0 for h in self.hosts})
        self._turn = 0

    def place(self) -> Placement:
        """A host for a new environment and its bound (not yet serving) endpoint socket."""
        least = min(self._load.values())
        candidates = [h for h in self.hosts if self._load[h] == least]
        host = candidates[self._turn % len(candidates)]
        self._turn += 1
        (listener,) = bind_sockets(0, "127.0.0.1", family=socket.AF_INET, backlog=16)
        self._load[host] += 1
        return Placement(host=host, listener=listener)

    def release(self, host: str) -> None:
        """The environment on ``host`` is gone."""
        if self._load[host] > 0:
            self._load[host] -= 1

    def __repr__(self) -> str:
        load = ", ".join(f"{h}={n}" for h, n in self._load.items())
        return f"<PlacementService {load}>"
