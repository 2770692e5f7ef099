"""`edge-agent`: serve, simulate, export, verify (CONTRACT section 1), plus studio and capacity."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, help="Live-casino edge appliance")


@app.command()
def serve(config: Path = typer.Option(..., "--config", exists=True, help="edge YAML config")) -> None:
    """Run one edge appliance."""
    from edge_agent.runtime import serve as run_serve

    run_serve(config)


@app.command()
def simulate(db: Path = typer.Option(..., "--db"), rounds: int = typer.Option(..., "--rounds", min=1),
             players: int = typer.Option(..., "--players", min=1),
             game: str = typer.Option("roulette", "--game"), seed: int | None = typer.Option(None, "--seed")) -> None:
    """Play N rounds with P simulated players through the real engine; writes a real journal."""
    from edge_agent.domain import games
    from edge_agent.simulate import run

    if game not in games.names():
        raise typer.BadParameter(f"game must be one of {', '.join(games.names())}")
    typer.echo(json.dumps(run(db, rounds, players, game, seed)))


@app.command()
def export(db: Path = typer.Option(..., "--db", exists=True), out: Path = typer.Option(..., "--out"),
           from_seq: int | None = typer.Option(None, "--from-seq"),
           to_seq: int | None = typer.Option(None, "--to-seq"),
           with_video: bool = typer.Option(False, "--with-video", help="include the rounds' clips (video/)"),
           video_dir: Path | None = typer.Option(None, "--video-dir", help="clips folder (default: the edge's)")) -> None:
    """Write a regulator export bundle (CONTRACT section 5)."""
    from edge_agent.audit.export import export_bundle

    m = export_bundle(db, out, from_seq=from_seq, to_seq=to_seq)
    if with_video:
        from edge_agent.evidence.export import add_videos, video_dir_of

        m = add_videos(out, video_dir or video_dir_of(db))
    typer.echo(json.dumps(m.model_dump()))


@app.command()
def verify(bundle: Path = typer.Argument(..., exists=True, file_okay=False)) -> None:
    """Verify an export bundle offline: hash chain, fairness of every round, payouts."""
    from contract.bundle import verify_bundle

    report = verify_bundle(bundle)
    typer.echo(json.dumps(report.as_dict()))
    if not report.ok:
        typer.echo(f"FAILED: first bad entry at seq {report.first_bad_seq}: {report.problems[0].reason}", err=True)
        sys.exit(1)
    typer.echo(f"OK: {report.entries} entries, {report.rounds_verified} rounds verified, "
               f"{report.rounds_voided} voided", err=True)


@app.command()
def keys(out: Path = typer.Option(Path("."), "--out")) -> None:
    """Generate a residency key and an Ed25519 checkpoint key for a new edge."""
    import secrets

    from contract import tokens

    out.mkdir(parents=True, exist_ok=True)
    (out / "residency.key").write_text(secrets.token_hex(32) + "\n")
    k = tokens.new_signing_key()
    (out / "checkpoint.pem").write_text(tokens.private_pem(k))
    (out / "checkpoint.pub.pem").write_text(tokens.public_pem(k))
    typer.echo(f"wrote {out}/residency.key, checkpoint.pem, checkpoint.pub.pem")


def _mount_capacity() -> None:
    from edge_agent.capacity import app as capacity_app

    app.add_typer(capacity_app, name="capacity", help="Capacity planner: egress, bet throughput, edges per region")


_mount_capacity()

if __name__ == "__main__":
    app()
