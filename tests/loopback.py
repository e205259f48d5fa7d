"""An HTTP server a test serves for real on loopback: a vendor, a processor, a backend."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[ThreadingHTTPServer]:
    """`handler` answering on a free loopback port, from a thread of its own, until the block
    ends (`address(server)` is where)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def address(server: ThreadingHTTPServer) -> str:
    """`127.0.0.1:PORT` of a server `serving` started."""
    return f"127.0.0.1:{server.server_address[1]}"
