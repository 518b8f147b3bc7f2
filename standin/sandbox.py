"""`make sandbox`: the local stand-in world, left running, to try every command by hand.

The same world as `make demo` (moto's server as AWS, two real HAProxy load balancers, three real
web servers, the prober function behind a local Invoke API, the SSM agent's stand-in), every
address on loopback. It writes the environment a controller needs into a file and prints how to
use it from another terminal; the controller itself runs only when asked (`--controller`), so
that every change in the sandbox is one the operator made. Ctrl-C stops everything.

moto runs in this process, with the stand-in's patches (standin/moto_fixes.py: a failback that
Route 53 accepts; standin/ssm_agent.py: pushes run on the real HAProxy), so commands from any
other process meet AWS's behaviour, not plain moto's.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import tempfile
import threading
from pathlib import Path

from standin.aws import local_aws
from standin.demo import CLUSTER, DOMAIN, Demo, Timeline
from standin.local_lambda import local_prober_function

WEBS = ("127.0.1.21", "127.0.1.22", "127.0.1.23")
LBS = (("lb1", "127.0.1.11"), ("lb2", "127.0.1.12"))
# Slower than the demo's 1 s rounds: by hand, a probe that answers in a second on a busy machine
# should not read as a dead LB. A `reconcile` takes about 10 s.
SCHEDULE = (3.0, 1.5, 4)  # LBF_PROBE_INTERVAL, LBF_PROBE_TIMEOUT, LBF_PROBE_ROUNDS


def environment_file(environment: dict[str, str]) -> str:
    """`export` lines a POSIX shell can source, every value quoted."""
    return "".join(
        f"export {name}={shlex.quote(value)}\n" for name, value in sorted(environment.items())
    )


def run(*, env_file: Path, controller: bool, stop: threading.Event | None = None) -> int:
    stop = stop or threading.Event()
    # Ctrl-C in a terminal, or SIGTERM from a supervisor (a background job of a script has
    # SIGINT ignored): both stop every process the sandbox started.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    timeline = Timeline()
    with (
        tempfile.TemporaryDirectory(prefix="lbf-sandbox-") as workdir,
        local_aws(DOMAIN) as aws,
        local_prober_function() as prober,
    ):
        world = Demo(aws, Path(workdir), timeline, prober, schedule=SCHEDULE)
        try:
            for address in WEBS:
                world.add_web(address)
            for name, address in LBS:
                world.add_lb(name, address)
            if controller:
                world.start_controller()
            else:
                world.agent.install().start()
            environment = {
                **aws.environment(),
                **prober.environment(),
                **world.controller_env,
            }
            env_file.write_text(environment_file(environment))
            print(_instructions(env_file, world, controller=controller), flush=True)
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            world.stop()
            env_file.unlink(missing_ok=True)
    print("sandbox stopped", flush=True)
    return 0


def _instructions(env_file: Path, world: Demo, *, controller: bool) -> str:
    pids = ", ".join(f"{name} {haproxy.pid}" for name, (_, haproxy) in sorted(world.lbs.items()))
    runs = (
        f"the controller runs here, back to back ({SCHEDULE[0]:g} s rounds)"
        if controller
        else "no controller runs here: each change is a command you run"
    )
    return "\n".join(
        [
            "",
            f"sandbox up: cluster {CLUSTER}, domain {DOMAIN}; {runs}.",
            "In another terminal, from this directory:",
            f"  . ./{env_file.name}",
            "  .venv/bin/python -m chalicelib reconcile   # what one scheduled run does",
            "  .venv/bin/python -m chalicelib status",
            "  .venv/bin/python -m chalicelib move-active --to lb2 --no-wait",
            f"Kill an LB's HAProxy to see a failover (pids: {pids}).",
            "Ctrl-C here stops the sandbox and every process it started.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--env-file",
        type=Path,
        default=Path(".sandbox.env"),
        help="where to write the environment (default: .sandbox.env)",
    )
    parser.add_argument(
        "--controller", action="store_true", help="run the controller here too, back to back"
    )
    args = parser.parse_args()
    sys.exit(run(env_file=args.env_file, controller=args.controller))


if __name__ == "__main__":
    main()
