"""Serving a test's HTTP handler on 127.0.0.1 in a thread, for as long as a `with` lasts."""

import contextlib
import http.server
import threading


@contextlib.contextmanager
def serving(handler, **state):
    """Yields (server, its URL); `state` becomes attributes of the server for the handler."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    for name, value in state.items():
        setattr(server, name, value)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
