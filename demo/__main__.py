"""`make demo` (`python -m demo`): start everything, print the URLs, stop it all on Ctrl-C.

Ctrl-C (or SIGTERM) stops the parts in reverse order, each edge voiding or settling its rounds
and flushing its journal first. `--seconds N` runs headless for N seconds and exits 0 only if
every part answered. If the supervisor itself dies, its children follow (parent-death signal).
"""
from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from demo.children import STOP, Stopping
from demo.system import Demo, say

app = typer.Typer(add_completion=False, help=__doc__.splitlines()[0])


@app.command()
def run(root: Annotated[Path, typer.Option(help="working directory (wiped at start)")] = Path("var/demo"),
        seconds: Annotated[float | None, typer.Option(help="run headless this long, check every part, exit")] = None,
        ) -> None:
    demo = Demo(root.resolve())

    def on_signal(_sig: int, _frame: Any) -> None:
        STOP.set()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGHUP: the terminal closed
        signal.signal(sig, on_signal)
    ok = True
    try:
        demo.start()
        if seconds is None:
            demo.banner()
            while all(p.alive() for p in demo.parts) and not STOP.wait(1):
                pass
            dead = [p.name for p in demo.parts if not p.alive()]
            if dead and not STOP.is_set():
                say(f"a part exited: {', '.join(dead)} (see its log in {demo.root})")
                ok = False
        else:
            if STOP.wait(max(0.0, seconds)):
                raise Stopping
            report = demo.check()
            say(json.dumps(report), prefix="")
            ok = bool(report["ok"])
    except (Stopping, KeyboardInterrupt):
        pass
    except Exception as exc:  # noqa: BLE001 - reported, then everything is stopped
        say(f"failed: {exc}")
        ok = False
    finally:
        # A second Ctrl-C must not cut the clean stop short (STOP is already set: nothing changes).
        demo.stop()
    raise typer.Exit(0 if ok else 1)


if __name__ == "__main__":
    app()
