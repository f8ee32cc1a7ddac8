"""A local HTTP file server for the download tests (test_fetch.py, test_download.py; import the
``server`` fixture by name) and the SHA-256 helper they and test_checksums.py share.

Nothing here touches the internet: files are served by a local http.server on 127.0.0.1 in a
thread that shuts itself down after a bounded time.
"""

from __future__ import annotations

import hashlib
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class _State:
    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.cut_after: int | None = None  # send this many body bytes once, then drop the connection
        self.ignore_range = False


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        state: _State = self.server.state
        name, wanted = self.path.lstrip("/"), self.headers.get("Range")
        state.requests.append((name, wanted))
        data = state.files.get(name)
        if data is None:
            self.send_error(404)
            return
        start = 0
        if wanted and not state.ignore_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", wanted)[1])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if state.cut_after is not None:
            body, state.cut_after = body[:state.cut_after], None
            self.close_connection = True
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """A file server on 127.0.0.1 (a daemon thread; a timer stops it after 60 s in any case)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.state = _State()
    httpd.state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    watchdog = threading.Timer(60.0, httpd.shutdown)
    thread.start()
    watchdog.start()
    yield httpd.state
    watchdog.cancel()
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)



def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

