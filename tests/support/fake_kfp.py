"""A small Kubeflow Pipelines API server on 127.0.0.1: answers the v2beta1 endpoints the kfp
client calls for runs, experiments and recurring runs, and records every request."""

import json
import urllib.parse

from tests.support.local_server import JsonHandler, serving


class _Handler(JsonHandler):
    def _record(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null") if length else None
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        self.server.requests.append((self.command, url.path, query, body))
        self.server.headers.append({k.lower(): v for k, v in self.headers.items()})
        return url.path, body

    def _refused(self, path: str) -> bool:
        """Answers the status `server.refuse` gives the path's last part, if any."""
        status = self.server.refuse.get(path.rsplit("/", 1)[-1])
        if status:
            self._reply({"error": "refused", "code": status}, status)
        return bool(status)

    def do_GET(self):
        path, _ = self._record()
        if self._refused(path):
            return
        if path.endswith("/healthz"):
            # as backend/src/apiserver/main.go writes it (2.0.5 to 2.17.0)
            self._reply({"commit_sha": "abc", "tag_name": self.server.tag_name,
                         "multi_user": False})
        elif path.endswith("/experiments"):
            self._reply({"experiments": self.server.experiments})
        elif path.endswith("/recurringruns"):
            self._reply({"recurringRuns": self.server.recurring_runs})  # the API names it so
        elif "/runs/" in path:
            self._reply({"run_id": path.rsplit("/", 1)[1], "state": self.server.run_state})
        else:
            self._reply({"error": f"unexpected GET {path}"}, 404)

    def do_POST(self):
        path, body = self._record()
        if self._refused(path):
            return
        if path.endswith("/experiments"):
            experiment = {**body, "experiment_id": f"exp-{len(self.server.experiments) + 1}"}
            self.server.experiments.append(experiment)
            self._reply(experiment)
        elif path.endswith("/runs"):
            self._reply({**body, "run_id": "run-1", "state": "PENDING"})
        elif path.endswith("/recurringruns"):
            recurring = {**body, "recurring_run_id": f"rr-{len(self.server.recurring_runs) + 1}",
                         "status": "ENABLED"}
            self.server.recurring_runs.append(recurring)
            self._reply(recurring)
        elif path.endswith(":disable") or path.endswith(":enable"):
            self._reply({})
        else:
            self._reply({"error": f"unexpected POST {path}"}, 404)

    def do_DELETE(self):
        path, _ = self._record()
        self._reply({} if "/recurringruns/" in path else {"error": f"unexpected DELETE {path}"},
                    200 if "/recurringruns/" in path else 404)


def fake_kfp_server():
    """Yields (server, its URL): the server records `requests` and `headers`; `refuse` maps the
    last part of a path ("healthz", "runs") to the HTTP status it answers instead."""
    return serving(_Handler, requests=[], experiments=[], recurring_runs=[], headers=[],
                   run_state="SUCCEEDED", tag_name="2.17.0", refuse={})
