"""`control-plane serve --config FILE`, `control-plane migrate --config FILE`."""
from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from control_plane.config import load_config

ConfigOpt = Annotated[Path, typer.Option("--config", exists=True, dir_okay=False, help="YAML config file")]

def _server_class() -> type:
    import uvicorn

    class GracefulServer(uvicorn.Server):
        """SIGTERM/SIGINT: graceful shutdown (lifespan stops the runtime), then exit 0 — uvicorn would
        re-raise the signal afterwards, which systemd and Kubernetes report as a failure."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            def _exit(_sig: int, _frame: object) -> None:
                self.should_exit = True

            originals = {sig: signal.signal(sig, _exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in originals.items():
                    signal.signal(sig, handler)

    return GracefulServer


def _GracefulServer(config: object) -> object:
    return _server_class()(config)


app = typer.Typer(help="Live-casino control plane", no_args_is_help=True)


@app.command()
def serve(config: ConfigOpt) -> None:
    """Run the control plane (HTTP API + NATS consumers)."""
    import uvicorn

    from control_plane.app import create_app

    cfg = load_config(config)
    server = _GracefulServer(uvicorn.Config(create_app(cfg), host=cfg.http.host, port=cfg.http.port,
                                            log_level="info", timeout_graceful_shutdown=10))
    server.run()


@app.command()
def migrate(config: ConfigOpt) -> None:
    """Apply the database migrations and exit."""
    from control_plane.adapters.db.engine import make_engine
    from control_plane.adapters.db.engine import migrate as run

    cfg = load_config(config)
    run(make_engine(cfg.database_url))
    typer.echo("migrated")


if __name__ == "__main__":
    app()
