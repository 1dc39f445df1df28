"""A small Vertex AI REST API on 127.0.0.1 for the real google-cloud-aiplatform clients (REST
transport): the Model Registry calls push and sync make, and the metadata store behind
Experiments as a generic resource store. Every request is recorded; while `fail` holds a key,
every request whose path ends with it answers with that HTTP status."""

import contextlib
import json
import re
import urllib.parse

from google.auth.credentials import AnonymousCredentials

from tests.support.local_server import JsonHandler, serving

PROJECT, LOCATION = "proj", "europe-west4"
PARENT = f"projects/{PROJECT}/locations/{LOCATION}"
_FILTER = re.compile(r'^\s*([\w.]+)\s*=\s*"((?:[^"\\]|\\.)*)"\s*$')
_STATUS = {403: "PERMISSION_DENIED", 404: "NOT_FOUND", 409: "ALREADY_EXISTS",
           503: "UNAVAILABLE"}


def _matches(model: dict, filter_: str) -> bool:
    if not filter_:
        return True
    key, value = _FILTER.match(filter_).groups()
    value = value.replace('\\"', '"')
    if key.startswith("labels."):
        return model.get("labels", {}).get(key[len("labels."):]) == value
    return model.get({"display_name": "displayName"}[key]) == value


class _Handler(JsonHandler):
    def _reply(self, body: dict, status: int = 200):
        if status >= 400:  # Google's error shape, which the clients turn into exceptions
            body = {"error": {"code": status, "message": body["message"],
                              "status": _STATUS[status]}}
        super()._reply(body, status)

    def _handle(self):
        url = urllib.parse.urlparse(self.path)
        path = urllib.parse.unquote(url.path).removeprefix("/v1/")
        query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.server.requests.append((self.command, path, query, body))
        for suffix, status in self.server.fail.items():
            if path.endswith(suffix):
                return self._reply({"message": f"injected {status} on {path}"}, status)
        models = _Models(self.server.models)
        handled = models.handle(self.command, path, query, body)
        if handled is None:
            handled = _generic(self.server.store, self.command, path, query, body)
        self._reply(*handled)

    do_GET = do_POST = do_PATCH = do_DELETE = _handle


class _Models:
    """The Model Registry: models[id] = list of version dicts (REST JSON), version 1 first."""

    def __init__(self, models: dict):
        self.models = models

    def handle(self, method, path, query, body):
        slices = re.fullmatch(rf"({PARENT}/models/[^/]+/evaluations/\d+)/slices(:batchImport)?",
                              path)
        if slices:
            return self._slices(method, *slices.groups(), body)
        match = re.fullmatch(rf"{PARENT}/models(?:/([^/@:]+)(?:@(\d+))?)?(?::(\w+)|/(\w+)"
                             r"(?::(\w+))?)?", path)
        if not match:
            return None
        model_id, version_id, verb, child, child_verb = match.groups()
        if model_id is None:
            return self._collection(method, verb, query, body)
        if model_id not in self.models:
            return {"message": f"model {model_id} not found"}, 404
        versions = self.models[model_id]
        if verb == "listVersions":
            return {"models": [v for v in versions if _matches(v, query.get("filter"))]}, 200
        version = self._version(versions, version_id)
        if verb == "mergeVersionAliases":
            for alias in body["versionAliases"]:
                for other in versions:  # an alias names one version of a model
                    other["versionAliases"] = [a for a in other["versionAliases"] if a != alias]
                version["versionAliases"].append(alias)
            return version, 200
        if child == "evaluations" and child_verb == "import":
            evaluation = {**body["modelEvaluation"],
                          "name": f"{path.rsplit(':', 1)[0]}/{len(version['evaluations']) + 1}"}
            version["evaluations"].append(evaluation)
            return evaluation, 200
        if child == "evaluations":
            return {"modelEvaluations": version["evaluations"]}, 200
        return version, 200

    def _slices(self, method, evaluation_name, batch_import, body):
        """ModelService's evaluation slices: batchImport (POST) and list (GET)."""
        evaluation = next((e for versions in self.models.values() for v in versions
                           for e in v["evaluations"] if e["name"] == evaluation_name), None)
        if evaluation is None:
            return {"message": f"evaluation {evaluation_name} not found"}, 404
        stored = evaluation.setdefault("slices", [])
        if batch_import:
            for found in body["modelEvaluationSlices"]:
                stored.append({**found, "name": f"{evaluation_name}/slices/{len(stored) + 1}"})
            return {"importedModelEvaluationSlices": [s["name"] for s in stored]}, 200
        return {"modelEvaluationSlices": stored}, 200

    @staticmethod
    def _version(versions, version_id):
        if version_id is None:
            return next(v for v in versions if "default" in v["versionAliases"])
        return versions[int(version_id) - 1]

    def _collection(self, method, verb, query, body):
        if method == "GET":
            defaults = [self._version(v, None) for v in self.models.values()]
            return {"models": [m for m in defaults if _matches(m, query.get("filter"))]}, 200
        if verb != "upload":
            return {"message": f"unexpected models:{verb}"}, 404
        parent_model = body.get("parentModel", "")
        model_id = (parent_model.rsplit("/", 1)[-1] if parent_model
                    else body.get("modelId") or str(len(self.models) + 1000))
        versions = self.models.setdefault(model_id, [])
        version = {**body["model"], "name": f"{PARENT}/models/{model_id}",
                   "versionId": str(len(versions) + 1),
                   "versionAliases": [] if versions else ["default"], "evaluations": []}
        versions.append(version)
        response = {"@type": "type.googleapis.com/google.cloud.aiplatform.v1.UploadModelResponse",
                    "model": version["name"], "modelVersionId": version["versionId"]}
        return {"name": f"{version['name']}/operations/{len(versions)}", "done": True,
                "response": response}, 200


def _generic(store: dict, method, path, query, body):
    """Metadata stores, contexts and the like: create (POST with an id), get, list, patch;
    verbs (":addContextChildren") succeed."""
    if method == "GET":
        if path in store:
            return store[path], 200
        collection = path.rsplit("/", 1)[-1]
        if collection in ("contexts", "executions", "artifacts", "tensorboards", "experiments",
                          "runs", "timeSeries"):
            prefix = path + "/"
            return {collection: [v for k, v in store.items() if k.startswith(prefix)
                                 and "/" not in k[len(prefix):]]}, 200
        return {"message": f"{path} not found"}, 404
    if method == "POST" and ":" in path.rsplit("/", 1)[-1]:
        return {}, 200
    if method == "POST":
        ids = [v for k, v in query.items() if k.endswith("Id")]
        name = f"{path}/{ids[0] if ids else len(store) + 1}"
        if name in store:
            return {"message": f"{name} already exists"}, 409
        store[name] = {**(body or {}), "name": name}
        return store[name], 200
    if method == "PATCH":
        store[path] = {**store.get(path, {}), **(body or {}), "name": path}
        return store[path], 200
    return {"message": f"unexpected {method} {path}"}, 404


@contextlib.contextmanager
def fake_vertex():
    """Yields (server, its URL). A project's default metadata store exists already."""
    store = {f"{PARENT}/metadataStores/default": {"name": f"{PARENT}/metadataStores/default"}}
    with serving(_Handler, requests=[], models={}, store=store, fail={}) as (server, url):
        yield server, url


def model_service(url: str):
    """A real aiplatform_v1 ModelServiceClient talking REST to the fake at `url`."""
    from google.cloud import aiplatform_v1

    return aiplatform_v1.ModelServiceClient(
        credentials=AnonymousCredentials(), transport="rest",
        client_options={"api_endpoint": url})
