"""A fake Databricks workspace: the workspace API the kit calls, in front of a real ``mlflow server``.

``python tests/databricks_sim/workspace.py --port P --backend http://127.0.0.1:Q --user U --journal FILE``
listens on 127.0.0.1:P. The simulated notebook kernel's ``MLFLOW_TRACKING_URI``, ``MLFLOW_REGISTRY_URI`` and
``DATABRICKS_HOST`` all point here, so the kit and MLflow run unmodified: MLflow's plain REST stores talk to it
and the real Databricks SDK authenticates to it with a personal access token.

What it answers itself:

- ``GET /.well-known/databricks-config`` (the SDK's host-metadata probe): a minimal JSON object.
- ``POST /api/2.0/workspace/mkdirs``: records the folder (and its parents); only under ``/Users/<user>/``.
- ``GET /__sim__/journal``: what it recorded (folders, requests, refusals), for the tests.

Everything else is forwarded to the MLflow server (method, path, query string, headers, body and status),
after the Databricks rules in :func:`refusal` (the workspace's experiment paths, Unity Catalog's registry rules
as MLflow 3.17.2's ``mlflow/store/_unity_catalog/registry/rest_store.py`` applies them on the client side) and,
for listings, :func:`strip_search_response` (Unity Catalog's searches carry no tags, aliases or model ids).
Refusals use MLflow's JSON error shape, so the MLflow client raises ``MlflowException``.

Messages quoted from Databricks or MLflow are marked "verbatim" below; the others are the simulation's wording.
"""

from __future__ import annotations

import argparse
import http.client
import json
import posixpath
import re
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHUNK = 64 * 1024
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "host", "content-length"}

# Verbatim from MLflow 3.17.2's Unity Catalog store (_validate_model_signature, _raise_unsupported_*).
UC_SIGNATURE_EXPLANATION = (
    "All models in the Unity Catalog must be logged with a model signature containing both input and output "
    "type specifications. See https://mlflow.org/docs/latest/model/signatures.html#how-to-log-models-with-signatures"
    " for details on how to log a model with a signature"
)
NO_SIGNATURE = f"Model passed for registration did not contain any signature metadata. {UC_SIGNATURE_EXPLANATION}"
INPUTS_ONLY = ("Model passed for registration contained a signature that includes only inputs. "
               f"{UC_SIGNATURE_EXPLANATION}")
_SINGLE_CONDITION = re.compile(r"""\s*(name|run_id)\s*=\s*(?P<q>['"])(?P<value>[^'"]*)(?P=q)\s*""")


@dataclass
class Refusal:
    """An error answer in MLflow's JSON shape."""

    status: int
    error_code: str
    message: str

    def body(self) -> bytes:
        return json.dumps({"error_code": self.error_code, "message": self.message}).encode()


def invalid(message: str) -> Refusal:
    return Refusal(400, "INVALID_PARAMETER_VALUE", message)


@dataclass
class Workspace:
    """The workspace's own state: whose it is and which folders exist."""

    user: str
    folders: set[str] = field(default_factory=set)

    @property
    def home(self) -> str:
        return f"/Users/{self.user}"

    def mkdirs(self, path: str) -> Refusal | None:
        """``workspace/mkdirs``: a folder and its parents, only in the user's home (``/Users`` is protected)."""
        path = posixpath.normpath(path or "")
        if not path.startswith("/"):
            return invalid(f"Path ({path}) doesn't start with '/'")  # simulation's wording
        if path in ("/", "/Users"):
            return Refusal(403, "PERMISSION_DENIED", f"Folder {path.strip('/') or '/'} is protected")  # Databricks' wording for /Users
        if path != self.home and not path.startswith(self.home + "/"):
            return Refusal(403, "PERMISSION_DENIED",
                           f"{self.user} does not have Manage permissions on {posixpath.dirname(path)}.")  # simulation's
        while path != self.home:
            self.folders.add(path)
            path = posixpath.dirname(path)
        return None

    def folder_exists(self, path: str) -> bool:
        return path == self.home or path in self.folders


# ---------------------------------------------------------------- the rules, one function per endpoint


def experiment_create_refusal(body: dict[str, Any], workspace: Workspace) -> Refusal | None:
    """Databricks' experiment names are absolute workspace paths whose folder exists; the server picks the artifacts' place."""
    name = str(body.get("name") or "")
    if body.get("artifact_location"):
        return invalid("Setting an artifact_location is not supported for experiments in a Databricks workspace: "
                       "the workspace chooses where artifacts go.")  # simulation's wording
    if name.startswith("/Workspace/"):
        # Databricks accepts it but stores the name without the prefix, so the next set_experiment fails (mlflow#11077).
        return invalid(f"Experiment name {name!r} starts with /Workspace/: use the path without it "
                       "(/Users/<you>/...), as Databricks stores it (mlflow#11077).")  # simulation's wording
    if not name.startswith("/"):
        return invalid(f"Got an invalid experiment name '{name}'. An experiment name must be an absolute path "
                       "within the Databricks workspace, e.g. '/Users/<some-username>/my-experiment'.")  # mlflow#8269
    if not name.startswith("/Users/"):
        return invalid(f"Experiment name {name!r}: the simulation only knows folders under /Users/.")
    parent = posixpath.dirname(name)
    if not workspace.folder_exists(parent):
        return Refusal(404, "RESOURCE_DOES_NOT_EXIST", f"Parent directory {parent} does not exist.")
    return None


def three_part_refusal(name: str) -> Refusal | None:
    """Unity Catalog models are ``catalog.schema.model`` (MLflow keys its hint on "specify all three levels")."""
    parts = name.split(".")
    if len(parts) != 3 or not all(parts):
        return invalid(f"Invalid model name '{name}': please specify all three levels of the name "
                       "(catalog.schema.model).")  # simulation's wording around MLflow's key phrase
    return None


def search_model_versions_refusal(query: dict[str, list[str]]) -> Refusal | None:
    """Unity Catalog: no ``order_by``; a filter is one ``name = '...'`` or ``run_id = '...'`` condition."""
    if any(query.get("order_by", [])):
        return invalid("Argument 'order_by' is unsupported for models in the Unity Catalog.")  # verbatim (MLflow)
    filters = [f for f in query.get("filter", []) if f.strip()]
    if filters and (len(filters) > 1 or not _SINGLE_CONDITION.fullmatch(filters[0])):
        return invalid(f"Unsupported filter {filters[0]!r}: Unity Catalog supports a single filter condition, "
                       "name = '<model>' or run_id = '<run id>'.")  # paraphrases MLflow's docstring
    return None


#: MLflow's open-source registry client adds this filter to every registered-model search by itself (to leave
#: prompts out, ``mlflow.prompt.registry_utils.add_prompt_filter_string``); its Unity Catalog client sends no filter.
#: The simulation speaks to the open-source client, so this one filter, alone, stands for "no filter".
OSS_PROMPT_FILTER = "tag.`mlflow.prompt.is_prompt` != 'true'"


def search_registered_models_refusal(query: dict[str, list[str]]) -> Refusal | None:
    """Unity Catalog: registered-model searches take neither a filter nor ``order_by``."""
    if any(v.strip() for v in query.get("order_by", [])):
        return invalid("Argument 'order_by' is unsupported for models in the Unity Catalog.")  # verbatim (MLflow)
    if any(v.strip() and v.strip() != OSS_PROMPT_FILTER for v in query.get("filter", [])):
        return invalid("Argument 'filter_string' is unsupported for models in the Unity Catalog.")  # verbatim (MLflow)
    return None


def unsupported_method(method: str) -> Refusal:
    return invalid(f"Method '{method}' is unsupported for models in the Unity Catalog.")  # verbatim (MLflow)


def signature_refusal(mlmodel: dict[str, Any] | None) -> Refusal | None:
    """The model being registered needs a signature with inputs and outputs (MLflow 3.17.2's UC store)."""
    signature = (mlmodel or {}).get("signature")
    if not signature or not signature.get("inputs"):
        return invalid(NO_SIGNATURE)
    if not signature.get("outputs"):
        return invalid(INPUTS_ONLY)
    return None


def strip_search_response(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Unity Catalog's listings carry no tags or aliases (nor a version's model id): MLflow's UC store drops them."""
    key = "model_versions" if kind == "model-versions" else "registered_models"
    for item in payload.get(key, []):
        for dropped in ("tags", "aliases", "model_id", "latest_versions"):
            item.pop(dropped, None)
    return payload


def endpoint(path: str) -> str:
    """``/api/2.0/mlflow/model-versions/search`` or ``/ajax-api/2.0/...`` -> ``model-versions/search``."""
    match = re.fullmatch(r"/(?:ajax-)?api/2\.0/mlflow/(.+?)/?", path)
    return match.group(1) if match else ""


# ---------------------------------------------------------------- the server


class Journal:
    """What the workspace saw: every request (method, endpoint, query), refusals, mkdirs, created experiments."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []

    def add(self, **record: Any) -> None:
        with self.lock:
            self.requests.append({"t": time.time(), **record})

    def event(self, **record: Any) -> None:
        with self.lock:
            self.events.append({"t": time.time(), **record})

    def snapshot(self, workspace: Workspace) -> dict[str, Any]:
        with self.lock:
            return {"user": workspace.user, "folders": sorted(workspace.folders),
                    "requests": list(self.requests), "events": list(self.events)}


class FakeWorkspaceServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, backend: str, user: str) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        parsed = urllib.parse.urlsplit(backend)
        self.backend_host, self.backend_port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.workspace = Workspace(user)
        self.journal = Journal()
        self.state_lock = threading.Lock()

    def backend(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.backend_host, self.backend_port, timeout=300)

    def backend_json(self, method: str, path: str, query: dict[str, str] | None = None) -> tuple[int, Any]:
        connection = self.backend()
        try:
            target = path + ("?" + urllib.parse.urlencode(query) if query else "")
            connection.request(method, target)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        try:
            return response.status, json.loads(data)
        except ValueError:
            return response.status, data

    def read_mlmodel(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """The MLmodel of the model a ``model-versions/create`` request registers, read from the MLflow server."""
        import yaml

        artifact_uri = None
        model_id = body.get("model_id") or ""
        source = str(body.get("source") or "")
        if not model_id and source.startswith("models:/m-"):
            model_id = source[len("models:/"):].split("/")[0]
        if model_id:
            status, payload = self.backend_json("GET", "/api/2.0/mlflow/logged-models/" + urllib.parse.quote(model_id))
            if status == 200:
                artifact_uri = payload["model"]["info"]["artifact_uri"]
        elif source.startswith("runs:/"):
            run_id, _, sub = source[len("runs:/"):].partition("/")
            status, payload = self.backend_json("GET", "/api/2.0/mlflow/runs/get", {"run_id": run_id})
            if status == 200:
                artifact_uri = payload["run"]["info"]["artifact_uri"].rstrip("/") + "/" + sub
        elif source.startswith("mlflow-artifacts:"):
            artifact_uri = source
        if not artifact_uri or not artifact_uri.startswith("mlflow-artifacts:"):
            return None
        relative = urllib.parse.urlsplit(artifact_uri).path.lstrip("/").rstrip("/")
        status, data = self.backend_json("GET", f"/api/2.0/mlflow-artifacts/artifacts/{relative}/MLmodel")
        if status != 200:
            return None
        text = data if isinstance(data, (bytes, str)) else json.dumps(data)
        return yaml.safe_load(text)


class Handler(BaseHTTPRequestHandler):
    server: FakeWorkspaceServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # the journal records requests

    # -------------------------------------------------------------- plumbing

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(parts)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, data: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _refuse(self, refusal: Refusal, path: str) -> None:
        self.server.journal.event(kind="refused", endpoint=path, status=refusal.status, message=refusal.message)
        self._send(refusal.status, refusal.body())

    def _forward(self, body: bytes | None, stream_length: int | None, rewrite: str | None) -> int:
        """Send the request on to the MLflow server and its answer back; returns the status.

        ``body`` is a request body already read (rules needed it); otherwise ``stream_length`` bytes are copied
        from the client as they come. ``rewrite`` names a listing whose JSON answer is stripped first.
        """
        connection = self.server.backend()
        try:
            connection.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            connection.putheader("Host", f"{self.server.backend_host}:{self.server.backend_port}")
            for name, value in self.headers.items():
                if name.lower() not in HOP_BY_HOP:
                    connection.putheader(name, value)
            length = len(body) if body is not None else (stream_length or 0)
            if body is not None or stream_length is not None or self.command in ("POST", "PUT", "PATCH"):
                connection.putheader("Content-Length", str(length))
            connection.endheaders()
            if body is not None:
                connection.send(body)
            elif stream_length:
                remaining = stream_length
                while remaining > 0:
                    piece = self.rfile.read(min(CHUNK, remaining))
                    if not piece:
                        break
                    connection.send(piece)
                    remaining -= len(piece)
            response = connection.getresponse()
            headers = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
            if rewrite and response.status == 200:
                payload = strip_search_response(rewrite, json.loads(response.read() or b"{}"))
                data = json.dumps(payload).encode()
                self.send_response(response.status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return response.status
            self.send_response(response.status)
            for name, value in headers:
                self.send_header(name, value)
            upstream_length = response.getheader("Content-Length")
            if upstream_length is not None:
                self.send_header("Content-Length", upstream_length)
                self.end_headers()
                while piece := response.read(CHUNK):
                    self.wfile.write(piece)
            elif self.command == "HEAD" or response.status in (204, 304):
                self.end_headers()
            else:  # the server streams without a length: pass it on in chunks
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                while piece := response.read1(CHUNK):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")
            return response.status
        finally:
            connection.close()

    # -------------------------------------------------------------- routing

    def _handle(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        name = endpoint(url.path)
        journal, workspace = self.server.journal, self.server.workspace
        record = {"method": self.command, "path": url.path, "endpoint": name,
                  "query": {k: v for k, v in query.items()}}
        if url.path == "/.well-known/databricks-config":
            journal.add(**record, status=200)
            self._send(200, json.dumps({"workspace_id": "1234567890"}).encode())
            return
        if url.path == "/__sim__/journal":
            self._send(200, json.dumps(self.server.journal.snapshot(workspace)).encode())
            return
        if url.path == "/api/2.0/workspace/mkdirs" and self.command == "POST":
            body = json.loads(self._read_body() or b"{}")
            with self.server.state_lock:
                refusal = workspace.mkdirs(str(body.get("path", "")))
            journal.add(**record, body=body, auth=self.headers.get("Authorization", ""),
                        status=refusal.status if refusal else 200)
            if refusal:
                self._refuse(refusal, url.path)
            else:
                journal.event(kind="mkdirs", path=posixpath.normpath(body["path"]))
                self._send(200, b"{}")
            return

        needs_body = name in ("experiments/create", "registered-models/create", "model-versions/create")
        body_bytes = self._read_body() if needs_body else None
        body = json.loads(body_bytes or b"{}") if needs_body else {}
        refusal = None
        rewrite = None
        with self.server.state_lock:
            if name == "experiments/create":
                refusal = experiment_create_refusal(body, workspace)
            elif name == "registered-models/create":
                refusal = three_part_refusal(str(body.get("name", "")))
            elif name == "model-versions/create":
                refusal = three_part_refusal(str(body.get("name", ""))) or signature_refusal(self.server.read_mlmodel(body))
            elif name == "model-versions/search":
                refusal = search_model_versions_refusal(query)
                rewrite = "model-versions"
            elif name == "registered-models/search":
                refusal = search_registered_models_refusal(query)
                rewrite = "registered-models"
            elif name == "model-versions/transition-stage":
                refusal = unsupported_method("transition_model_version_stage")
            elif name == "registered-models/get-latest-versions":
                refusal = unsupported_method("get_latest_versions")
        if needs_body:
            record["body"] = {k: v for k, v in body.items() if k in ("name", "source", "run_id", "model_id", "artifact_location")}
        if refusal:
            if body_bytes is None:
                self._read_body()  # the next request on this connection starts after it
            journal.add(**record, status=refusal.status, refused=refusal.message)
            self._refuse(refusal, url.path)
            return
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        if chunked and body_bytes is None:
            body_bytes = self._read_body()
        stream_length = None if body_bytes is not None else int(self.headers.get("Content-Length") or 0) or None
        status = self._forward(body_bytes, stream_length, rewrite)
        journal.add(**record, status=status)
        if name == "experiments/create" and status == 200:
            journal.event(kind="experiment", name=body.get("name"))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


def serve(port: int, backend: str, user: str) -> FakeWorkspaceServer:
    """Start the fake workspace in a background thread (for tests in one process); ``shutdown()`` stops it."""
    server = FakeWorkspaceServer(port, backend, user)
    threading.Thread(target=server.serve_forever, name="fake-workspace", daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backend", required=True, help="the MLflow server's URL, http://127.0.0.1:<port>")
    parser.add_argument("--user", required=True, help="the workspace user (what current_user() returns)")
    args = parser.parse_args(argv)
    server = FakeWorkspaceServer(args.port, args.backend, args.user)
    print(f"fake workspace on http://127.0.0.1:{args.port} -> {args.backend}", flush=True)  # noqa: T201
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
