#!/usr/bin/env python3
"""Stub "core API" for the apiextensions-apiserver test tier (e2e/apiserver.sh).

apiextensions-apiserver runs without a kube-apiserver, but its informers still need a "core"
server (--kubeconfig): namespaces (NamespaceLifecycle, webhook namespaceSelector), services, and
the Validating/MutatingWebhookConfigurations its admission plugins call. This serves exactly that,
over plain HTTP on 127.0.0.1, with real list + watch semantics:

* LIST  /api/v1/namespaces, /api/v1/services,
        /apis/admissionregistration.k8s.io/v1/{validating,mutating}webhookconfigurations
* GET   /api/v1/namespaces/NAME, .../webhookconfigurations/NAME  (404 Status when absent)
* WATCH ?watch=true: ADDED/MODIFIED/DELETED events after ?resourceVersion (all current objects as
        ADDED without one), streamed as they happen, until timeoutSeconds (capped at 60 s).
        sendInitialEvents=true -> 400, so client-go falls back to list + watch.
* Anything else -> 404 Status.

State file (--state, JSON), re-read whenever it changes (polled every 50 ms; write it atomically,
e.g. to a temp file then rename):

    {"validatingwebhookconfigurations": [<object>, ...],
     "mutatingwebhookconfigurations": [<object>, ...],
     "namespaces": ["extra-namespace", ...]}          # optional, added to --namespace ones

Objects need metadata.name; apiVersion, kind, uid, resourceVersion and creationTimestamp are
filled in. NO defaulting is applied: give namespaceSelector, objectSelector, matchPolicy,
timeoutSeconds, sideEffects, admissionReviewVersions and rules[].scope explicitly.

Test helpers (not Kubernetes API):
* PUT /stub/state   body = the state JSON: validated, written atomically to the file, applied now;
                    answers {"resourceVersion": N}
* GET /stub/state   the state as served, with "resourceVersion"
* GET /stub/status  {"resourceVersion": N, "watches": {resource: open}, "delivered": {resource: RV}}
                    "delivered" = highest resourceVersion sent to a watcher of that resource: once
                    it reaches the N of a PUT, the apiserver's informer has the change.
* GET /healthz      ok
"""

import argparse
import copy
import json
import os
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ADMISSION = "/apis/admissionregistration.k8s.io/v1/"
# resource -> (collection path, apiVersion, kind)
RESOURCES = {
    "namespaces": ("/api/v1/namespaces", "v1", "Namespace"),
    "services": ("/api/v1/services", "v1", "Service"),
    "validatingwebhookconfigurations": (
        ADMISSION + "validatingwebhookconfigurations",
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfiguration",
    ),
    "mutatingwebhookconfigurations": (
        ADMISSION + "mutatingwebhookconfigurations",
        "admissionregistration.k8s.io/v1",
        "MutatingWebhookConfiguration",
    ),
}
BY_PATH = {path: res for res, (path, _, _) in RESOURCES.items()}
STATE_KEYS = {"validatingwebhookconfigurations", "mutatingwebhookconfigurations", "namespaces"}
MAX_WATCH_SECONDS = 60


def log(msg):
    sys.stderr.write(f"[stub] {time.strftime('%H:%M:%S')} {msg}\n")


def now_rfc3339():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def namespace_object(name):
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def desired_objects(state, base_namespaces):
    """State JSON -> {resource: {name: user object}}; raises ValueError when malformed."""
    if not isinstance(state, dict):
        raise ValueError("state must be a JSON object")
    unknown = set(state) - STATE_KEYS - {"resourceVersion"}
    if unknown:
        raise ValueError(f"unknown state keys {sorted(unknown)}; allowed: {sorted(STATE_KEYS)}")
    out = {res: {} for res in RESOURCES}
    extra = state.get("namespaces", [])
    if not isinstance(extra, list) or not all(isinstance(n, str) and n for n in extra):
        raise ValueError("namespaces must be a list of names")
    for name in list(base_namespaces) + extra:
        out["namespaces"][name] = namespace_object(name)
    for res in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations"):
        items = state.get(res, [])
        if not isinstance(items, list):
            raise ValueError(f"{res} must be a list")
        for obj in items:
            name = obj.get("metadata", {}).get("name") if isinstance(obj, dict) else None
            if not isinstance(name, str) or not name:
                raise ValueError(f"every {res} item needs metadata.name")
            if name in out[res]:
                raise ValueError(f"duplicate {res} name {name!r}")
            out[res][name] = obj
    return out


class Store:
    """Objects with resourceVersions, and the event log watchers read from."""

    def __init__(self, base_namespaces):
        self.base_namespaces = base_namespaces
        self.cond = threading.Condition()
        self.rv = 1
        self.user = {res: {} for res in RESOURCES}  # as given, to detect changes
        self.served = {res: {} for res in RESOURCES}  # with metadata filled in
        self.events = []  # (rv, resource, type, object)
        self.watches = {res: 0 for res in RESOURCES}
        self.delivered = {res: 0 for res in RESOURCES}

    def _served_object(self, res, name, user, rv, created):
        _, api_version, kind = RESOURCES[res]
        obj = copy.deepcopy(user)
        obj["apiVersion"] = api_version
        obj["kind"] = kind
        meta = obj.setdefault("metadata", {})
        meta["name"] = name
        meta["uid"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"trustgate-stub/{res}/{name}"))
        meta["resourceVersion"] = str(rv)
        meta["creationTimestamp"] = created
        meta.setdefault("generation", 1)
        return obj

    def apply(self, state):
        """Replaces the state; returns the resourceVersion after the change."""
        desired = desired_objects(state, self.base_namespaces)
        with self.cond:
            changed = 0
            for res in RESOURCES:
                old, new = self.user[res], desired[res]
                for name in sorted(set(old) | set(new)):
                    if name in new and old.get(name) == new[name]:
                        continue
                    self.rv += 1
                    changed += 1
                    if name not in new:
                        obj = copy.deepcopy(self.served[res].pop(name))
                        obj["metadata"]["resourceVersion"] = str(self.rv)
                        del old[name]
                        self.events.append((self.rv, res, "DELETED", obj))
                        continue
                    prev = self.served[res].get(name)
                    created = prev["metadata"]["creationTimestamp"] if prev else now_rfc3339()
                    obj = self._served_object(res, name, new[name], self.rv, created)
                    old[name] = copy.deepcopy(new[name])
                    self.served[res][name] = obj
                    self.events.append((self.rv, res, "MODIFIED" if prev else "ADDED", obj))
            if changed:
                self.cond.notify_all()
            return self.rv, changed

    def state(self):
        with self.cond:
            return {
                "resourceVersion": self.rv,
                "validatingwebhookconfigurations": list(self.served["validatingwebhookconfigurations"].values()),
                "mutatingwebhookconfigurations": list(self.served["mutatingwebhookconfigurations"].values()),
                "namespaces": sorted(self.served["namespaces"]),
            }


class StateFile:
    """Polls the state file and applies it to the store when it changes."""

    def __init__(self, path, store):
        self.path = path
        self.store = store
        self.lock = threading.Lock()
        self.seen = None
        self.failed = None

    def _stat(self):
        try:
            st = os.stat(self.path)
            return (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            return None

    def reload(self, force=False):
        with self.lock:
            sig = self._stat()
            if (sig == self.seen or sig == self.failed) and not force:
                return
            try:
                if sig is None:
                    state = {}
                else:
                    with open(self.path, encoding="utf-8") as f:
                        state = json.load(f)
                rv, changed = self.store.apply(state)
            except (OSError, ValueError) as e:
                # a half-written file: keep serving the old state, retry on the next poll
                log(f"state file {self.path}: {e}; keeping the previous state")
                self.failed = sig
                return
            self.seen = sig
            self.failed = None
            if changed:
                log(f"state file applied: {changed} change(s), resourceVersion {rv}")

    def write(self, state):
        desired_objects(state, self.store.base_namespaces)  # validate before touching the file
        tmp = f"{self.path}.tmp.{os.getpid()}.{threading.get_ident()}"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(state, f, indent=1)
        os.replace(tmp, self.path)
        self.reload(force=True)

    def poll_forever(self):
        while True:
            self.reload()
            time.sleep(0.05)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "trustgate-stub-core/1"
    store: Store = None
    state_file: StateFile = None

    def log_message(self, fmt, *args):  # noqa: N802 (stdlib name)
        log(fmt % args)

    def _json(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _status(self, code, reason, message):
        self._json(
            code,
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
             "message": message, "reason": reason, "code": code},
        )

    def do_GET(self):  # noqa: N802
        url = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        path = url.path.rstrip("/")
        if path in ("/healthz", "/readyz", "/livez"):
            data = b"ok"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if path == "/stub/state":
            self._json(200, self.store.state())
            return
        if path == "/stub/status":
            with self.store.cond:
                body = {"resourceVersion": self.store.rv, "watches": dict(self.store.watches),
                        "delivered": dict(self.store.delivered)}
            self._json(200, body)
            return
        if path in BY_PATH:
            res = BY_PATH[path]
            if q.get("watch") in ("true", "1"):
                self._watch(res, q)
            else:
                self._list(res, q)
            return
        parent, _, name = path.rpartition("/")
        if parent in BY_PATH and name:
            res = BY_PATH[parent]
            with self.store.cond:
                obj = self.store.served[res].get(name)
            if obj is None:
                self._status(404, "NotFound", f'{res} "{name}" not found')
            else:
                self._json(200, obj)
            return
        self._status(404, "NotFound", f"the stub core API does not serve {path}")

    def do_PUT(self):  # noqa: N802
        if urlsplit(self.path).path != "/stub/state":
            self._status(405, "MethodNotAllowed", "the stub core API is read-only")
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            state = json.loads(self.rfile.read(length) or b"{}")
            if isinstance(state, dict):
                state.pop("resourceVersion", None)
            self.state_file.write(state)
        except ValueError as e:
            self._status(400, "BadRequest", str(e))
            return
        self._json(200, {"resourceVersion": self.store.rv})

    def do_POST(self):  # noqa: N802 (TokenReview, SubjectAccessReview, ...: not served)
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self._status(404, "NotFound", f"the stub core API does not serve POST {urlsplit(self.path).path}")

    do_DELETE = do_PATCH = do_POST

    @staticmethod
    def _selected(obj, q):
        fs = q.get("fieldSelector", "")
        for term in filter(None, fs.split(",")):
            key, _, value = term.partition("=")
            if key == "metadata.name" and obj["metadata"]["name"] != value.lstrip("="):
                return False
        return True

    def _list(self, res, q):
        _, api_version, kind = RESOURCES[res]
        with self.store.cond:
            items = [o for o in self.store.served[res].values() if self._selected(o, q)]
            rv = self.store.rv
        self._json(
            200,
            {"apiVersion": api_version, "kind": kind + "List",
             "metadata": {"resourceVersion": str(rv)}, "items": items},
        )

    def _chunk(self, body):
        data = json.dumps(body).encode() + b"\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _watch(self, res, q):
        if q.get("sendInitialEvents") == "true":
            self._status(400, "BadRequest", "sendInitialEvents is not supported by the stub")
            return
        try:
            timeout = min(int(q.get("timeoutSeconds") or MAX_WATCH_SECONDS), MAX_WATCH_SECONDS)
            since = int(q.get("resourceVersion") or 0)
        except ValueError:
            self._status(400, "BadRequest", "bad timeoutSeconds or resourceVersion")
            return
        deadline = time.monotonic() + max(timeout, 1)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        store = self.store
        with store.cond:
            store.watches[res] += 1
            if since == 0:  # no resourceVersion: the current objects as ADDED, then changes
                pending = [("ADDED", o) for o in store.served[res].values() if self._selected(o, q)]
                since = store.rv
            else:
                pending = []
        try:
            while True:
                for kind, obj in pending:
                    self._chunk({"type": kind, "object": obj})
                    with store.cond:
                        store.delivered[res] = max(store.delivered[res], int(obj["metadata"]["resourceVersion"]))
                with store.cond:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    if store.rv <= since:
                        store.cond.wait(min(left, 1.0))
                    new = [(rv, t, o) for rv, r, t, o in store.events if rv > since and r == res]
                    since = max(since, store.rv)
                pending = [(t, o) for _, t, o in new if self._selected(o, q)]
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            with store.cond:
                store.watches[res] -= 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--state", required=True, help="JSON state file (webhook configurations)")
    ap.add_argument("--namespace", action="append", default=[], help="a namespace to serve (repeatable)")
    args = ap.parse_args()

    store = Store(args.namespace or ["default", "kube-system"])
    state_file = StateFile(args.state, store)
    state_file.reload(force=True)
    Handler.store = store
    Handler.state_file = state_file
    threading.Thread(target=state_file.poll_forever, daemon=True).start()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    log(f"serving on http://{args.host}:{args.port}, namespaces {sorted(store.served['namespaces'])}, state {args.state}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
