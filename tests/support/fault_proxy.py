"""A fault-injecting HTTP proxy on 127.0.0.1 in front of the storage emulator.

`faults` is a list consumed one per request: "503", "429" answer with that status, "drop"
closes the connection without a reply, "stall" waits `stall_s` seconds before forwarding (a
server that hangs), None forwards. When the list is empty, `then` decides
every further request the same way (None: forward).
"""

import http.client
import http.server
import threading
import time
import urllib.parse

from tests.support.local_server import serving


class _Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _fault(self):
        with self.server.lock:
            self.server.seen += 1
            return self.server.faults.pop(0) if self.server.faults else self.server.then

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        fault = self._fault()
        if fault == "drop":
            self.close_connection = True
            return
        if fault == "stall":
            time.sleep(self.server.stall_s)
        if fault in ("503", "429"):
            self.send_response(int(fault))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        target = urllib.parse.urlparse(self.server.target)
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
        connection.request(self.command, self.path, body=body, headers=headers)
        reply = connection.getresponse()
        data = reply.read()
        self.send_response(reply.status)
        for key, value in reply.getheaders():
            if key.lower() not in ("transfer-encoding", "content-length", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        connection.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle


def fault_proxy(target: str, faults=None, then=None):
    """Yields (server, its URL); `server.seen` counts the requests."""
    return serving(_Proxy, target=target, faults=list(faults or []), then=then, seen=0,
                   lock=threading.Lock(), stall_s=8.0)
