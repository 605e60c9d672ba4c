"""Screenshot web pages with headless Chromium, through its DevTools protocol.

    python docs/screenshot.py [--cookie NAME=VALUE] [--width 1400] [--height 900] \\
        [--wait 6] [--click LABEL ...] URL OUT.png [URL OUT.png ...]

Chromium's own ``--screenshot`` flag cannot send a cookie, and the Ray dashboard (token
authentication on) answers 401 without one: this script sets the cookie the dashboard
sets after a login (``ray-authentication-token``) through the DevTools protocol, then
loads each page, waits for its JavaScript to draw, and saves a PNG. It needs Debian's
``chromium`` (``apt-get install chromium``) and aiohttp (which Ray's dashboard brings).
Used by docs/screenshots.sh.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from urllib.parse import urlsplit


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Page:
    def __init__(self, ws):
        self.ws, self.next_id = ws, 0

    async def call(self, method: str, **params):
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        while True:
            msg = json.loads((await self.ws.receive()).data)
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})


#: clicks each label (a checkbox's, say) whose text is one of the given strings
_CLICK_JS = """
(function (texts) {
  for (const label of document.querySelectorAll('label')) {
    if (texts.includes(label.textContent.trim())) label.click();
  }
})(%s)
"""


async def _shoot(debug_port: int, shots: list[tuple[str, str]], *, cookie: str | None, width: int,
                 height: int, wait: float, clicks: list[str]) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        deadline = time.time() + 30
        while True:
            try:
                async with http.get(f"http://127.0.0.1:{debug_port}/json/list") as r:
                    pages = [t for t in await r.json() if t.get("type") == "page"]
                if pages:
                    break
            except aiohttp.ClientError:
                pass
            if time.time() > deadline:
                raise RuntimeError("chromium's DevTools endpoint did not come up")
            await asyncio.sleep(0.3)
        async with http.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            page = _Page(ws)
            await page.call("Page.enable")
            await page.call("Network.enable")
            await page.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                            deviceScaleFactor=1, mobile=False)
            for url, out in shots:
                if cookie:
                    name, _, value = cookie.partition("=")
                    parts = urlsplit(url)
                    await page.call("Network.setCookie", name=name, value=value,
                                    url=f"{parts.scheme}://{parts.netloc}/", path="/")
                await page.call("Page.navigate", url=url)
                await asyncio.sleep(wait)  # the dashboards draw with JavaScript after the load event
                if clicks:
                    await page.call("Runtime.evaluate", expression=_CLICK_JS % json.dumps(clicks))
                    await asyncio.sleep(2)
                shot = await page.call("Page.captureScreenshot", format="png")
                with open(out, "wb") as fh:
                    fh.write(base64.b64decode(shot["data"]))
                print(f"{out}: {url}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pairs", nargs="+", help="URL OUT.png, repeated")
    ap.add_argument("--cookie", default=None, help="NAME=VALUE set for each URL's host")
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=900)
    ap.add_argument("--wait", type=float, default=6.0, help="seconds to let a page draw")
    ap.add_argument("--click", action="append", default=[],
                    help="after drawing, click the label with this text (repeatable), e.g. a plot's checkbox")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = ap.parse_args()
    if len(args.pairs) % 2:
        ap.error("give URL OUT.png pairs")
    shots = list(zip(args.pairs[::2], args.pairs[1::2]))

    port = _free_port()
    profile = tempfile.mkdtemp(prefix="chromium-shot-")
    browser = subprocess.Popen(
        [args.chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--no-first-run", f"--remote-debugging-port={port}", f"--user-data-dir={profile}",
         f"--window-size={args.width},{args.height}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        asyncio.run(_shoot(port, shots, cookie=args.cookie, width=args.width, height=args.height,
                           wait=args.wait, clicks=args.click))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(browser.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            browser.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(browser.pid, signal.SIGKILL)
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
