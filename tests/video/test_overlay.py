"""The player's reveal overlay (edge_agent/web/static/reveal-overlay.js) in headless Chromium: a
`vision.reveal` from the table's event stream puts the camera's reading on the picture."""
from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parents[2] / "edge_agent" / "web" / "static"


async def test_overlay_shows_what_the_camera_read():
    from playwright.async_api import async_playwright

    app = Starlette(routes=[Mount("/play", StaticFiles(directory=STATIC))])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
            page = await browser.new_page()
            await page.goto(f"http://127.0.0.1:{port}/play/reveal-overlay.js")  # same origin for the module
            await page.set_content('<div class="video-wrap"><video></video></div>')
            await page.add_script_tag(url=f"http://127.0.0.1:{port}/play/reveal-overlay.js", type="module")
            await page.evaluate("""() => window.dispatchEvent(new CustomEvent("casino:message", {detail: {
                type: "vision.reveal", table_id: "baccarat-1", n: 7, result: "match",
                seen: {player0: "TH", banker0: "KS", player1: "4D", banker1: "AC"}}}))""")
            box = page.locator("#reveal-overlay")
            await box.wait_for(state="visible", timeout=5000)
            assert await box.inner_text() == "Camera: 10♥ K♠ 4♦ A♣"
            assert await box.get_attribute("data-n") == "7"
            await page.evaluate("""() => window.dispatchEvent(new CustomEvent("casino:message", {detail: {
                type: "vision.reveal", table_id: "roulette-1", n: 8, result: "mismatch", seen: {number: 17}}}))""")
            assert (await box.inner_text()).startswith("Camera could not confirm the deal: 17")
            await page.evaluate("""() => window.dispatchEvent(new CustomEvent("casino:message", {detail: {
                type: "round.opened", table_id: "roulette-1", n: 9}}))""")
            assert await box.is_hidden()
            await browser.close()
    finally:
        server.should_exit = True
        await task
