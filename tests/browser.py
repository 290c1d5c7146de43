"""Headless Chromium (the Debian package) driven over the DevTools protocol, for the browser tests.

Software WebGL (SwiftShader) is switched on, as this machine has no GPU. Every
JavaScript exception and every console or log entry of level error is collected.
"""

import base64
import io
import json
import os
import shutil
import subprocess
import time
import urllib.request

import websocket
from PIL import Image

CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
    "--disable-gpu-sandbox", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
    "--remote-debugging-port=0", "--window-size=1280,1000", "--hide-scrollbars",
)


def chromium_path():
    """The chromium binary, or None when it is not installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One headless Chromium with one page; use as a context manager (the process is always ended)."""

    def __init__(self, profile_dir, extra_flags=()):
        self.profile_dir = str(profile_dir)
        self.extra_flags = tuple(extra_flags)
        self.process = None
        self.socket = None
        self.next_id = 0
        self.errors = []
        self.events = []

    def __enter__(self):
        self.process = subprocess.Popen(
            [chromium_path(), *CHROMIUM_FLAGS, *self.extra_flags, f"--user-data-dir={self.profile_dir}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            self.socket = websocket.create_connection(self._page_socket_url(), timeout=120, suppress_origin=True)
            for domain in ("Page", "Runtime", "Log"):
                self.call(f"{domain}.enable")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        if self.socket is not None:
            self.socket.close()
        self.process.kill()
        self.process.wait(timeout=30)

    def _page_socket_url(self):
        port_file = os.path.join(self.profile_dir, "DevToolsActivePort")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"chromium exited with code {self.process.returncode}")
            if os.path.exists(port_file):
                with open(port_file) as handle:
                    lines = handle.read().split()
                if lines:
                    with urllib.request.urlopen(f"http://127.0.0.1:{lines[0]}/json/list", timeout=10) as reply:
                        pages = [t for t in json.load(reply) if t["type"] == "page"]
                    if pages:
                        return pages[0]["webSocketDebuggerUrl"]
            time.sleep(0.2)
        raise RuntimeError("chromium did not open its DevTools port within 60 s")

    def _receive(self):
        message = json.loads(self.socket.recv())
        method = message.get("method")
        params = message.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.errors.append(details.get("exception", {}).get("description") or details.get("text"))
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            self.errors.append(" ".join(str(arg.get("value", arg.get("description"))) for arg in params["args"]))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.errors.append(f"{params['entry']['text']} ({params['entry'].get('url', '')})")
        if method:
            self.events.append(method)
        return message

    def call(self, method, **params):
        """Sends one DevTools command and returns its result."""
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = self._receive()
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def evaluate(self, expression):
        """The value of a JavaScript expression in the page."""
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def open(self, url, ready, timeout=120):
        """Navigates to `url` and waits until the JavaScript expression `ready` is true."""
        self.events.clear()
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready_now = self.evaluate(ready)  # also reads the events that arrived meanwhile
            if ready_now and "Page.loadEventFired" in self.events:
                return
            time.sleep(0.5)
        raise TimeoutError(f"{url}: {ready} did not become true within {timeout} s")

    def screenshot(self, clip=None):
        """The page (or the `clip` {x, y, width, height} of it, in CSS pixels) as an RGB PIL image."""
        params = {"format": "png"}
        if clip:
            params["clip"] = dict(clip, scale=1)
        data = self.call("Page.captureScreenshot", **params)["data"]
        return Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")
