"""The ``lambda-lab`` command: ``serve``, ``demo`` and ``lab``.

* ``lambda-lab serve hello.handler`` runs the Invoke API and the function's environments in the
  foreground until Ctrl-C (or SIGTERM), so ``aws lambda invoke --endpoint-url`` and boto3 can
  call it; ``--config lab.toml`` deploys several functions; ``--events FILE`` writes the event
  log as JSON lines while it runs.
* ``lambda-lab demo`` plays cold start, warm reuse, a burst and a throttle headless, prints the
  lifecycle and writes ``timeline.html``.
* ``lambda-lab lab`` opens JupyterLab on the lesson notebooks.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from .config import FunctionConfig, LabConfig, load_toml
from .errors import LambdaLabError
from .events import Event
from .narrate import format_line

EXAMPLES = Path(__file__).resolve().parent / "examples"


def _serve(args: argparse.Namespace) -> int:
    from .lab import Lab

    if args.config:
        lab_config, functions = load_toml(args.config)
    elif args.handler:
        lab_config = LabConfig()
        module = args.handler.rpartition(".")[0]
        functions = [FunctionConfig(name=args.name or module.replace(".", "-"),
                                    handler=args.handler, code_dir=args.code_dir,
                                    runtime=args.runtime, timeout=args.timeout)]
    else:
        print("lambda-lab serve: give a HANDLER (module.function) or --config lab.toml",
              file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    events_file = open(args.events, "w", encoding="utf-8") if args.events else None  # noqa: SIM115
    with Lab(account_concurrency=lab_config.account_concurrency,
             unreserved_minimum=lab_config.unreserved_minimum,
             scale_rate=lab_config.scale_rate, retry_delays=lab_config.retry_delays,
             host=args.host, port=args.port, region=lab_config.region) as lab:
        lock = threading.Lock()

        def on_event(event: Event) -> None:
            with lock:
                if events_file is not None:
                    events_file.write(json.dumps(event.to_dict()) + "\n")
                    events_file.flush()
                if not args.quiet:
                    line = format_line(event)
                    if line:
                        print(line, flush=True)

        lab.events.subscribe(on_event)
        for config in functions:
            keys = {k: v for k, v in vars(config).items() if k != "name"}
            lab.deploy(config.name, **keys)
        print(f"lambda-lab serving {', '.join(lab.functions)} at {lab.endpoint_url}", flush=True)
        print(f"  try: aws lambda invoke --endpoint-url {lab.endpoint_url} --function-name "
              f"{functions[0].name} out.json", flush=True)
        while not stop.wait(0.2):
            pass
        print("lambda-lab: shutting down", flush=True)
    if events_file is not None:
        events_file.close()
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .lab import Lab

    with Lab(account_concurrency=args.concurrency) as lab:
        def show(event: Event) -> None:
            line = format_line(event)
            if line:
                print(line, flush=True)

        lab.events.subscribe(show)
        fn = lab.deploy("hello", handler="hello.handler", code_dir=str(EXAMPLES),
                        init_delay=0.1, idle_timeout=60)
        print("\n== 1. the first invoke is a cold start ==")
        print(fn.invoke({"name": "Ada"}))
        print("\n== 2. the second is warm: same environment, same pid ==")
        print(fn.invoke({"name": "Bob"}))
        print(f"\n== 3. a burst of {args.concurrency} concurrent invokes: "
              "busy environments force cold starts ==")
        for result in fn.burst(args.concurrency, {"sleep": 0.5}):
            print(result)
        print(f"\n== 4. {args.concurrency + 3} at once with account_concurrency="
              f"{args.concurrency}: the excess is throttled ==")
        results = fn.burst(args.concurrency + 3, {"sleep": 0.5})
        throttled = [r for r in results if r.outcome == "throttled"]
        print(f"{len(results) - len(throttled)} served, {len(throttled)} throttled "
              f"({throttled[0].reason if throttled else '-'})")
        figure = lab.timeline_figure()
    figure.write_html(args.output, include_plotlyjs=True)
    print(f"\ntimeline written to {args.output}")
    return 0


def _lab(args: argparse.Namespace) -> int:
    notebooks = Path(args.notebooks or Path.cwd() / "notebooks")
    if not notebooks.is_dir():
        print(f"lambda-lab lab: no notebooks folder at {notebooks}; pass --notebooks DIR",
              file=sys.stderr)
        return 2
    argv = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={notebooks}",
            "--ip=127.0.0.1"]
    first = notebooks / "00-tour.ipynb"
    if first.exists():
        argv.append(f"--LabApp.default_url=/lab/tree/{first.name}")
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and Binder-like machines
        argv.append("--allow-root")
    os.execv(sys.executable, argv + list(args.jupyter_args))
    return 0  # pragma: no cover


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lambda-lab", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the Invoke API and environments until Ctrl-C")
    serve.add_argument("handler", nargs="?", help="module.function, e.g. hello.handler")
    serve.add_argument("--config", help="a lab.toml with [lab] and [functions.NAME] tables")
    serve.add_argument("--name", help="function name (default: the handler's module)")
    serve.add_argument("--code-dir", default=".", help="folder with the handler (default: .)")
    serve.add_argument("--runtime", default="python", help="python | awslambdaric | provided")
    serve.add_argument("--timeout", type=float, default=3.0)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=9000)
    serve.add_argument("--events", help="write the event log to FILE as JSON lines")
    serve.add_argument("--quiet", action="store_true", help="do not print the lifecycle")
    demo = sub.add_parser("demo", help="cold start, warm reuse, burst and throttle, headless")
    demo.add_argument("--concurrency", type=int, default=4)
    demo.add_argument("--output", default="timeline.html")
    lab = sub.add_parser("lab", help="open JupyterLab on the lessons")
    lab.add_argument("--notebooks", help="folder of lessons (default: ./notebooks)")
    lab.epilog = "Other options go to jupyter lab, e.g. --no-browser --port=8890."
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "lab":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.jupyter_args = extra
    handlers = {"serve": _serve, "demo": _demo, "lab": _lab}
    try:
        return handlers[args.command](args)
    except LambdaLabError as exc:
        print(f"lambda-lab {args.command}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. the port is taken
        if args.command == "serve":
            print(f"lambda-lab serve: cannot start on {args.host}:{args.port}: "
                  f"{exc.strerror or exc}; choose another --port", file=sys.stderr)
        else:
            print(f"lambda-lab {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
