"""Install and bundle the third-party WHEP player (npm package, unmodified) for the test page.

`python -m tests.browser.whep_player_setup` (also run by the browser fixture and `make
whep-player`): `npm ci` in tests/browser/whep_player if its node_modules are missing, then esbuild
bundles the package for the page (dist/player.js). Nothing is fetched when both are there.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

DIR = Path(__file__).parent / "whep_player"
BUNDLE = DIR / "dist" / "player.js"


def ensure_bundle() -> Path:
    npm = shutil.which("npm")
    if not (DIR / "node_modules" / "@eyevinn" / "webrtc-player").is_dir():
        if npm is None:
            raise RuntimeError("npm is needed to install the third-party WHEP player (apt-get install npm)")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=DIR, check=True, timeout=600)
    sources = [DIR / "entry.js", DIR / "package-lock.json"]
    if not BUNDLE.exists() or BUNDLE.stat().st_mtime < max(p.stat().st_mtime for p in sources):
        subprocess.run([str(DIR / "node_modules" / ".bin" / "esbuild"), "entry.js", "--bundle", "--format=iife",
                        "--platform=browser", f"--outfile={BUNDLE.relative_to(DIR)}", "--log-level=warning"],
                       cwd=DIR, check=True, timeout=120)
    return BUNDLE


if __name__ == "__main__":
    print(ensure_bundle())
