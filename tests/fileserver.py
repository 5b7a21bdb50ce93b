"""A real HTTP server on 127.0.0.1 for downloader tests and benchmarks, with scripted faults.

Faults are queued per path and used up one per request ("close_mid", "status:404",
"status:429", "slow:SECONDS", "wrong", and the lying ones: "trickle:SECONDS" sends the body one
byte per SECONDS, "endless" sends zeros without a Content-Length until the client goes away,
"length:N" announces N bytes whatever the body, "norange" answers a Range request with the whole
body, "badrange" answers it with a range that starts elsewhere); `always` applies a fault to
every request. Routes serve bytes (archives included), a file, or a callable handler.
`latency` delays every response and `rate` limits each connection's bytes per second.
"""
from __future__ import annotations

import collections
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

CHUNK = 64 * 1024


@dataclass
class Route:
    data: bytes | Path | None = None
    faults: collections.deque = field(default_factory=collections.deque)
    always: str | None = None
    redirect: str | None = None
    content_type: str = "application/octet-stream"


class FileServer:
    def __init__(self, root: Path | None = None, latency: float = 0.0, rate: float | None = None):
        self.root = Path(root) if root else None
        self.latency = latency
        self.rate = rate
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                server._handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def add(self, path: str, data: bytes | Path | None = None, faults=(), **kw) -> str:
        self.routes[path] = Route(data, collections.deque(faults), **kw)
        return self.url + path

    def hits(self, path: str) -> list[str | None]:
        return [rng for p, rng in self.requests if p == path]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def _body(self, route: Route | None, path: str) -> bytes | Path | None:
        if route is not None:
            return route.data
        if self.root is not None:
            candidate = (self.root / path.lstrip("/")).resolve()
            if candidate.is_file() and self.root.resolve() in candidate.parents:
                return candidate
        return None

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        path = urlsplit(h.path).path
        with self.lock:
            self.requests.append((path, h.headers.get("Range")))
            route = self.routes.get(path)
            fault = None
            if route is not None:
                fault = route.always or (route.faults.popleft() if route.faults else None)
        if self.latency:
            time.sleep(self.latency)
        if fault and fault.startswith("slow:"):
            time.sleep(float(fault.split(":")[1]))
        if route is not None and route.redirect:
            return self._status(h, 302, {"Location": route.redirect})
        if fault and fault.startswith("status:"):
            code = int(fault.split(":")[1])
            return self._status(h, code, {"Retry-After": "0"} if code == 429 else {})
        body = self._body(route, path)
        if body is None:
            return self._status(h, 404)
        if callable(body):
            return body(h)
        if isinstance(body, Path) and fault is None:
            return self._send_file(h, body)
        data = body.read_bytes() if isinstance(body, Path) else body
        if fault == "wrong":
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        if fault == "endless":
            return self._endless(h)
        start = 0
        match = re.match(r"bytes=(\d+)-$", h.headers.get("Range", ""))
        if match and int(match.group(1)) < len(data) and fault != "norange":
            start = int(match.group(1))
            h.send_response(206)
            shown = 0 if fault == "badrange" else start
            h.send_header("Content-Range", f"bytes {shown}-{len(data) - 1}/{len(data)}")
        else:
            h.send_response(200)
        h.send_header("Content-Type", route.content_type if route else "application/octet-stream")
        announced = fault.split(":")[1] if fault and fault.startswith("length:") else str(len(data) - start)
        h.send_header("Content-Length", announced)
        h.send_header("Accept-Ranges", "bytes")
        h.end_headers()
        payload = memoryview(data)[start:]
        if fault == "close_mid":
            payload = payload[: len(payload) // 2]
        if fault and fault.startswith("trickle:"):
            return self._trickle(h, payload, float(fault.split(":")[1]))
        self._send(h, payload)
        if fault and fault.startswith("length:"):
            h.close_connection = True
        if fault == "close_mid":
            h.close_connection = True
            h.wfile.flush()
            h.connection.shutdown(2)

    def _send_file(self, h, path: Path) -> None:
        size = path.stat().st_size
        start = 0
        match = re.match(r"bytes=(\d+)-$", h.headers.get("Range", ""))
        if match and int(match.group(1)) < size:
            start = int(match.group(1))
            h.send_response(206)
            h.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        else:
            h.send_response(200)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Content-Length", str(size - start))
        h.end_headers()
        with open(path, "rb") as f:
            f.seek(start)
            if self.rate:
                self._send(h, memoryview(f.read()))
            else:
                try:
                    h.wfile.flush()
                    h.connection.sendfile(f, start)
                except (BrokenPipeError, ConnectionResetError):
                    h.close_connection = True

    def _send(self, h, payload: memoryview) -> None:
        began = time.monotonic()
        sent = 0
        try:
            for i in range(0, len(payload), CHUNK):
                piece = payload[i:i + CHUNK]
                h.wfile.write(piece)
                sent += len(piece)
                if self.rate:
                    ahead = sent / self.rate - (time.monotonic() - began)
                    if ahead > 0:
                        time.sleep(ahead)
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True

    def _trickle(self, h, payload: memoryview, pause: float) -> None:
        try:
            for i in range(len(payload)):
                h.wfile.write(payload[i:i + 1])
                h.wfile.flush()
                time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            pass
        h.close_connection = True

    def _endless(self, h) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Connection", "close")
        h.end_headers()
        block = bytes(CHUNK)
        try:
            while True:
                h.wfile.write(block)
        except (BrokenPipeError, ConnectionResetError):
            pass
        h.close_connection = True

    def _status(self, h, code: int, headers: dict | None = None) -> None:
        h.send_response(code)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", "0")
        h.end_headers()
