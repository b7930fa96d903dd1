"""Debian's Chromium, headless, plays the stream from the edge relay by WHEP."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from playwright.async_api import async_playwright

from casino_cli.platform import free_port
from tests.media.conftest import STREAM, MediaPlatform

PAGE = Path(__file__).parent / "page"
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    # Host candidates as addresses, not mDNS names: the relay resolves no mDNS.
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]


@contextlib.asynccontextmanager
async def page_server() -> AsyncIterator[str]:
    """The test page on a loopback origin (a page on about:blank cannot reach loopback)."""
    app = web.Application()
    app.router.add_static("/", PAGE)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_chromium_plays_the_stream_by_whep(media: MediaPlatform) -> None:
    assert shutil.which("chromium"), "Debian's chromium is required (apt-get install chromium)"
    async with page_server() as origin, async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=FLAGS
        )
        try:
            page = await browser.new_page(viewport={"width": 640, "height": 360})
            await page.goto(f"{origin}/index.html?whep={media.whep}/whep/{STREAM}")
            await page.wait_for_function(
                "document.getElementById('video').videoWidth > 0 || whepState.error", timeout=30_000
            )
            error = await page.evaluate("whepState.error")
            assert error is None, error
            assert await page.evaluate("document.getElementById('video').videoWidth") == 640
            first = await page.evaluate(
                "[document.getElementById('video').currentTime,"
                " document.getElementById('video').getVideoPlaybackQuality().totalVideoFrames]"
            )
            await asyncio.sleep(2.0)
            later = await page.evaluate(
                "[document.getElementById('video').currentTime,"
                " document.getElementById('video').getVideoPlaybackQuality().totalVideoFrames]"
            )
            assert later[0] > first[0] + 1.0, f"currentTime advances: {first} -> {later}"
            assert later[1] >= first[1] + 40, f"decoded frames arrive: {first} -> {later}"
            # The capture-time channel lets the page measure glass-to-glass delay.
            delays = await page.evaluate("whepState.delays")
            assert len(delays) > 20
            median = sorted(delays)[len(delays) // 2]
            assert 0 < median < 1500, f"glass-to-glass median {median} ms"
            shot = media.platform.data_dir / "chromium-whep.png"
            await page.screenshot(path=str(shot))
            assert shot.stat().st_size > 5_000
            stats = await page.evaluate(
                """async () => {
                  const report = await whepPc.getStats();
                  for (const s of report.values())
                    if (s.type === 'inbound-rtp' && s.kind === 'video')
                      return {codec: report.get(s.codecId).mimeType, frames: s.framesDecoded};
                }"""
            )
            assert stats["codec"] == "video/H264" and stats["frames"] > 40
            # The page leaves as a browser does: DELETE of its resource, across origins.
            status = await page.evaluate(
                f"fetch('{media.whep}' + whepState.location, {{method: 'DELETE'}})"
                ".then(r => r.status)"
            )
            assert status == 200
        finally:
            await browser.close()
