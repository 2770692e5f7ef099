"""`python -m edge_agent.studio TABLE SRT_URL [--fps N] [--latency MS] [--duration S]
[--passphrase-file F] [--streamid ID] [--game G --dealer-port P [--deal-interval S] [--fault-every K]]`.

With `--dealer-port` the simulated dealer takes the edge's dealing instructions on that UDP port
and puts the cards (or the roulette result) on the table; `--fault-every K` deals one wrong card
or number in every K-th reveal (for tests)."""
from __future__ import annotations

import argparse

from edge_agent.studio.sender import run_studio


def main() -> None:
    p = argparse.ArgumentParser(prog="edge_agent.studio")
    p.add_argument("table_id")
    p.add_argument("srt_url")
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--latency", type=int, default=40)
    p.add_argument("--duration", type=float, default=None)
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--no-audio", action="store_true")
    p.add_argument("--passphrase-file", default=None, help="SRT passphrase (AES-256), a file of mode 0600")
    p.add_argument("--streamid", default=None, help="SRT stream id the edge's table expects")
    p.add_argument("--game", default="roulette")
    p.add_argument("--dealer-port", type=int, default=None)
    p.add_argument("--deal-interval", type=float, default=0.6)
    p.add_argument("--fault-every", type=int, default=0)
    a = p.parse_args()
    scene = None
    if a.dealer_port is not None:
        import threading

        from edge_agent.studio.dealer import Dealer, listen

        scene = Dealer(a.game, a.width, a.height, a.fps, deal_interval_s=a.deal_interval, fault_every=a.fault_every)
        listen(scene, a.dealer_port, threading.Event())
    run_studio(a.table_id, a.srt_url, fps=a.fps, latency_ms=a.latency, duration_s=a.duration,
               width=a.width, height=a.height, audio=not a.no_audio, passphrase_file=a.passphrase_file,
               streamid=a.streamid, game=a.game, scene=scene)


if __name__ == "__main__":
    main()
