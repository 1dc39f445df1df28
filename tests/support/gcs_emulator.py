"""A real GCS HTTP endpoint on 127.0.0.1 (gcp-storage-emulator), for the gs:// paths.

The emulator returns every object in one listing page; like real GCS (1,000 a page) we cap a
page at PAGE_SIZE items and hand out nextPageToken, so the client's pagination is exercised.
"""

import contextlib
import logging
import socket

from gcp_storage_emulator import server as emulator
from gcp_storage_emulator.handlers import objects

PAGE_SIZE = 3
# Its per-request log lines are noise in the test output (and outlive pytest's captured stream).
logging.getLogger("gcp_storage_emulator").setLevel(logging.WARNING)


def _paginated_ls(request, response, storage, *args, **kwargs):
    captured = {}
    send = response.json
    response.json = captured.update
    try:
        objects.ls(request, response, storage, *args, **kwargs)
    finally:
        response.json = send
    if not captured:
        return  # an error status was set
    items = captured.get("items", [])
    size = min(int((request.query.get("maxResults") or [PAGE_SIZE])[0]), PAGE_SIZE)
    start = int((request.query.get("pageToken") or ["0"])[0])
    page = dict(captured, items=items[start:start + size])
    if start + size < len(items):
        page["nextPageToken"] = str(start + size)
    send(page)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_emulator():
    """Yields the emulator's host URL; restores the listing handler afterwards."""
    routes = next(handlers for regex, handlers in emulator.HANDLERS if regex.endswith("/o$"))
    original = routes[emulator.GET]
    routes[emulator.GET] = _paginated_ls
    port = _free_port()
    server = emulator.create_server("127.0.0.1", port, in_memory=True)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        routes[emulator.GET] = original
