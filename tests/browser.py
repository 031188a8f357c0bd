"""Load a page in headless Chromium, as a person would open it, and say what happened.

Talks the Chrome DevTools Protocol over the browser's websocket (aiohttp, already a kubetune
dependency): it records every console message, uncaught exception, log entry and network request
while the page loads, evaluates a script in it, and takes a full-page screenshot. Chromium comes
from apt (``make chromium``); a missing browser fails the test, it never skips.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def chromium_binary() -> str:
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("headless Chromium is required for the report's browser test: apt-get install chromium "
                "(make chromium does it)", pytrace=False)


@dataclass
class PageVisit:
    """What loading the page did."""

    console: list[tuple[str, str]] = field(default_factory=list)  # (level, text)
    exceptions: list[str] = field(default_factory=list)
    log_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    evaluated: Any = None
    screenshot: bytes = b""

    @property
    def errors(self) -> list[str]:
        return ([f"console.{level}: {text}" for level, text in self.console if level in ("error", "warning")]
                + [f"exception: {e}" for e in self.exceptions] + [f"log: {e}" for e in self.log_errors])


class _Session:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse, visit: PageVisit) -> None:
        self.ws = ws
        self.visit = visit
        self.next_id = 0
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.session_id: str | None = None
        self.loaded = asyncio.Event()

    async def call(self, method: str, params: dict[str, Any] | None = None, *, browser: bool = False) -> Any:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if not browser and self.session_id:
            message["sessionId"] = self.session_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = future
        await self.ws.send_str(json.dumps(message))
        answer = await asyncio.wait_for(future, 60)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    async def pump(self) -> None:
        async for message in self.ws:
            data = json.loads(message.data)
            if "id" in data and data["id"] in self.pending:
                self.pending.pop(data["id"]).set_result(data)
                continue
            method, params = data.get("method"), data.get("params", {})
            if method == "Runtime.consoleAPICalled":
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
                self.visit.console.append((params.get("type", ""), text))
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                self.visit.exceptions.append(details.get("exception", {}).get("description") or details.get("text", ""))
            elif method == "Log.entryAdded":
                entry = params.get("entry", {})
                if entry.get("level") in ("error", "warning"):
                    self.visit.log_errors.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}")
            elif method == "Network.requestWillBeSent":
                self.visit.requests.append(params.get("request", {}).get("url", ""))
            elif method == "Page.loadEventFired":
                self.loaded.set()


async def _visit(page: Path, script: str, width: int) -> PageVisit:
    visit = PageVisit()
    with tempfile.TemporaryDirectory(prefix="kubetune-chromium-") as profile:
        process = await asyncio.create_subprocess_exec(
            chromium_binary(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-dev-shm-usage", "--remote-debugging-port=0", f"--user-data-dir={profile}",
            "about:blank", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            assert process.stderr is not None
            url = None
            while url is None:
                line = (await asyncio.wait_for(process.stderr.readline(), 60)).decode(errors="replace")
                if not line:
                    raise RuntimeError("chromium exited before it opened its DevTools port")
                found = re.search(r"DevTools listening on (ws://\S+)", line)
                url = found.group(1) if found else None
            async with aiohttp.ClientSession() as http, http.ws_connect(url, max_msg_size=0) as ws:
                session = _Session(ws, visit)
                pump = asyncio.create_task(session.pump())
                target = await session.call("Target.createTarget", {"url": "about:blank"}, browser=True)
                attached = await session.call("Target.attachToTarget",
                                              {"targetId": target["targetId"], "flatten": True}, browser=True)
                session.session_id = attached["sessionId"]
                for domain in ("Page", "Runtime", "Log", "Network"):
                    await session.call(f"{domain}.enable")
                await session.call("Emulation.setDeviceMetricsOverride",
                                   {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False})
                await session.call("Page.navigate", {"url": page.resolve().as_uri()})
                await asyncio.wait_for(session.loaded.wait(), 60)
                await asyncio.sleep(0.3)  # let late console messages arrive
                result = await session.call("Runtime.evaluate", {"expression": script, "returnByValue": True,
                                                                  "awaitPromise": True})
                if "exceptionDetails" in result:
                    raise RuntimeError(f"the check script failed: {result['exceptionDetails']}")
                visit.evaluated = result["result"].get("value")
                shot = await session.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
                visit.screenshot = base64.b64decode(shot["data"])
                pump.cancel()
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()
    return visit


def visit(page: Path, script: str = "null", *, width: int = 1280) -> PageVisit:
    """Open ``page`` (a local file), run ``script`` once it has loaded, screenshot the whole page."""
    return asyncio.run(_visit(page, script, width))


#: For a report page: every image's state, and the table's first column before and after sorting by
#: the objective (the third column) twice.
REPORT_CHECK = """
(() => {
  const images = Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth,
                                                       height: i.naturalHeight}));
  const names = () => Array.from(document.querySelectorAll("#trials tbody tr")).map(r => r.cells[0].textContent);
  const before = names();
  const header = document.querySelectorAll("#trials th")[2];
  header.click(); const ascending = names();
  header.click(); const descending = names();
  const sections = Array.from(document.querySelectorAll("h2")).map(h => h.textContent);
  return {images, before, ascending, descending, sections, title: document.title};
})()
"""
