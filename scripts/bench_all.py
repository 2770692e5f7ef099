"""`make bench`: every benchmark under benchmarks/ at quick settings, then a table of their results.

A benchmark is a module with a `__main__` block that prints one JSON line with a "bench" key as
its last line (docs/BENCHMARKS.md). Each must have quick settings here: a new benchmark without
them fails the run (and tests/ops/test_bench_all.py), so `make bench` never silently skips one.
Quick settings show that a benchmark runs and roughly where it stands; record figures from full
runs (their own defaults), not from these.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

ROOT = Path(__file__).resolve().parents[1]

QUICK: dict[str, list[str]] = {
    "benchmarks.edge.bets": ["--duration", "2", "--conns", "8"],
    "benchmarks.edge.blackjack": ["--players", "50", "--procs", "1", "--rounds", "1", "--window", "2", "--spread", "0.5"],
    "benchmarks.video.recording": ["--seconds", "8", "--round-s", "4"],
    "benchmarks.video.vision": ["--reveals", "40", "--faults", "5"],
    "benchmarks.video.fed": ["--reveals", "10", "--studio-height", "360"],
    "benchmarks.sync.lag": ["--rate", "200", "--duration", "3", "--warmup", "1"],
    "benchmarks.sync.drain": ["--entries", "5000", "--timeout", "120"],
    "benchmarks.sync.replicas": ["--entries", "3000", "--timeout", "120"],
    "benchmarks.media.sendpath": ["--frames", "500"],
    "benchmarks.media.egress": ["--viewers", "5", "--seconds", "3"],
    "benchmarks.media.viewers": ["--viewers", "20", "--procs", "1", "--seconds", "3", "--settle", "1"],
    "benchmarks.media.glass_to_glass": ["--seconds", "4"],
    "benchmarks.browser.glass_to_glass": ["--seconds", "4", "--warmup", "1", "--ladder", "light"],
}


def discover(root: Path = ROOT) -> list[str]:
    """Every module under benchmarks/ that runs as a program."""
    mods = []
    for path in sorted((root / "benchmarks").rglob("*.py")):
        if 'if __name__ == "__main__"' in path.read_text():
            mods.append(".".join(path.relative_to(root).with_suffix("").parts))
    return mods


def last_json(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.strip().splitlines()):
        try:
            obj = json.loads(line)
        except ValueError:
            return None
        return obj if isinstance(obj, dict) and "bench" in obj else None
    return None


def run_one(module: str, timeout: float) -> dict[str, Any]:
    t0 = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-m", module, *QUICK[module]], cwd=ROOT, capture_output=True,
                              text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"module": module, "status": f"timeout {timeout:.0f}s", "seconds": timeout, "result": None}
    result = last_json(proc.stdout)
    status = "ok" if proc.returncode == 0 and result else f"exit {proc.returncode}" if proc.returncode else "no JSON line"
    return {"module": module, "status": status, "seconds": round(time.monotonic() - t0, 1), "result": result,
            "stderr": proc.stderr[-400:] if status != "ok" else ""}


def _figures(result: dict[str, Any] | None, width: int = 90) -> str:
    if not result:
        return ""
    text = ", ".join(f"{k}={v}" for k, v in result.items() if k != "bench" and not isinstance(v, (dict, list)))
    return text if len(text) <= width else text[: width - 1] + "…"


def table(rows: list[dict[str, Any]]) -> str:
    head = ("benchmark", "bench", "status", "s", "figures")
    body = [(r["module"].removeprefix("benchmarks."), (r["result"] or {}).get("bench", "-"), r["status"],
             str(r["seconds"]), _figures(r["result"])) for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=False)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
    return "\n".join([*lines, *(fmt.format(*row) for row in body)])


def main(only: Annotated[list[str] | None, typer.Option(help="run these modules only")] = None,
         timeout: Annotated[float, typer.Option(help="seconds per benchmark")] = 300.0,
         json_out: Annotated[Path | None, typer.Option("--json", help="also write every result here")] = None) -> None:
    modules = discover()
    missing = [m for m in modules if m not in QUICK]
    if missing:
        typer.echo(f"benchmarks without quick settings in scripts/bench_all.py: {missing}", err=True)
        raise typer.Exit(2)
    rows = []
    for module in only or modules:
        typer.echo(f"[bench] {module} {' '.join(QUICK[module])}", err=True)
        rows.append(run_one(module, timeout))
        if rows[-1]["stderr"]:
            typer.echo(rows[-1]["stderr"], err=True)
    typer.echo(table(rows))
    if json_out is not None:
        json_out.write_text("\n".join(json.dumps(r["result"] or {"module": r["module"], "status": r["status"]})
                                      for r in rows) + "\n")
    raise typer.Exit(0 if all(r["status"] == "ok" for r in rows) else 1)


if __name__ == "__main__":
    typer.run(main)
