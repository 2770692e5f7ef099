"""`python -m edge_agent.studio TABLE SRT_URL [--fps N] [--latency MS] [--duration S]
[--passphrase-file F] [--streamid ID]`."""
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
    a = p.parse_args()
    run_studio(a.table_id, a.srt_url, fps=a.fps, latency_ms=a.latency, duration_s=a.duration,
               width=a.width, height=a.height, audio=not a.no_audio, passphrase_file=a.passphrase_file,
               streamid=a.streamid)


if __name__ == "__main__":
    main()
