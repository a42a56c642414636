#!/usr/bin/env python3
"""Minimal Docker registry / Notary token server for trustgate's test stack.

Stdlib only, plus the `openssl` CLI for RS256 signatures. It implements the
docker/distribution token protocol far enough for docker-registry (auth.token),
notary-server ("auth": {"type": "token"}), skopeo, the notary CLI and trustgate:

  GET  /token?service=SVC&scope=TYPE:NAME:ACTIONS[&scope=...][&account=U]
       optional HTTP Basic auth. Valid credentials get every requested action,
       anonymous callers get `pull` only, wrong credentials get 401 + an errcode
       JSON body. Scopes may repeat and may be space-separated; the name may
       contain colons (notary GUNs such as 127.0.0.1:5000/app).
  POST /token  (OAuth2 form: grant_type=password|refresh_token, service, scope,
       username, password, refresh_token) -> same token, plus refresh_token.
  GET  /stats  request counters as JSON (for token-caching tests);
       POST /stats/reset (or GET /stats?reset=1) zeroes them.
  GET  /health "ok".

The JWT header carries x5c = [base64 DER of the signing certificate]; that
certificate is the `rootcertbundle` of the services.
"""

import argparse
import base64
import datetime
import json
import secrets
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def parse_scopes(values):
    """'repository:127.0.0.1:5000/a/b:push,pull' -> (type, name, [actions])."""
    out = []
    for value in values:
        for scope in value.split():
            if ":" not in scope:
                continue
            typ, rest = scope.split(":", 1)
            if ":" not in rest:
                continue
            name, actions = rest.rsplit(":", 1)
            out.append((typ, name, [a for a in actions.split(",") if a]))
    return out


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.data = {
            "requests": 0,  # every HTTP request, /stats and /health excluded
            "tokens_issued": 0,
            "authenticated": 0,
            "anonymous": 0,
            "denied": 0,  # wrong credentials (401)
            "by_service": {},
            "by_scope": {},  # raw scope string -> number of token requests
            "by_account": {},
        }

    def bump(self, key, sub=None, n=1):
        if sub is None:
            self.data[key] += n
        else:
            self.data[key][sub] = self.data[key].get(sub, 0) + n

    def snapshot(self):
        with self.lock:
            return json.loads(json.dumps(self.data))


class TokenServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_handler(cfg, stats):
    with open(cfg.cert, "rb") as f:
        pem = f.read().decode("ascii")
    body = "".join(
        line for line in pem.splitlines() if line and not line.startswith("-----")
    )
    x5c = [base64.b64encode(base64.b64decode(body)).decode("ascii")]

    def sign(signing_input):
        proc = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", cfg.key],
            input=signing_input,
            capture_output=True,
            check=True,
        )
        return proc.stdout

    def issue(service, scopes, user):
        now = int(time.time())
        access = []
        for typ, name, actions in scopes:
            granted = actions if user else [a for a in actions if a == "pull"]
            access.append({"type": typ, "name": name, "actions": granted})
        header = {"typ": "JWT", "alg": "RS256", "x5c": x5c}
        claims = {
            "iss": cfg.issuer,
            "sub": user or "",
            "aud": service,
            "exp": now + cfg.ttl,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": access,
        }
        signing_input = (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(claims, separators=(",", ":")).encode())
        ).encode("ascii")
        token = signing_input.decode("ascii") + "." + b64url(sign(signing_input))
        issued = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
        return {
            "token": token,
            "access_token": token,
            "expires_in": cfg.ttl,
            "issued_at": issued.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "trustgate-token-server/1"

        def log_message(self, fmt, *args):
            sys.stderr.write(
                "%s %s\n" % (self.log_date_time_string(), fmt % args)
            )
            sys.stderr.flush()

        def reply(self, code, obj, extra_headers=()):
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in extra_headers:
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def basic_user(self):
            """None = anonymous, False = bad credentials, str = user."""
            auth = self.headers.get("Authorization", "")
            if not auth:
                return None
            scheme, _, value = auth.partition(" ")
            if scheme.lower() != "basic":
                return False
            try:
                user, _, password = (
                    base64.b64decode(value.strip()).decode("utf-8").partition(":")
                )
            except Exception:
                return False
            return self.check(user, password)

        def check(self, user, password):
            if user == cfg.user and password == cfg.password:
                return user
            return False

        def token_response(self, service, scopes_raw, user, refresh=False):
            with stats.lock:
                stats.bump("requests")
                stats.bump("by_service", service or "")
                for s in scopes_raw:
                    for one in s.split():
                        stats.bump("by_scope", one)
                if user is False:
                    stats.bump("denied")
                else:
                    stats.bump("authenticated" if user else "anonymous")
                    stats.bump("tokens_issued")
                    stats.bump("by_account", user or "")
            if user is False:
                self.reply(
                    401,
                    {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]},
                    [("WWW-Authenticate", 'Basic realm="trustgate-token-server"')],
                )
                return
            out = issue(service, parse_scopes(scopes_raw), user)
            if refresh and user:
                out["refresh_token"] = "refresh-" + user
            self.reply(200, out)

        def do_GET(self):
            url = urlsplit(self.path)
            q = parse_qs(url.query, keep_blank_values=True)
            if url.path == "/health":
                self.reply(200, "ok")
            elif url.path == "/stats":
                snap = stats.snapshot()
                if q.get("reset", ["0"])[0] not in ("", "0", "false"):
                    with stats.lock:
                        stats.reset()
                self.reply(200, snap)
            elif url.path == cfg.path:
                service = q.get("service", [""])[0]
                self.token_response(service, q.get("scope", []), self.basic_user())
            else:
                with stats.lock:
                    stats.bump("requests")
                self.reply(404, {"errors": [{"code": "NOT_FOUND", "message": url.path}]})

        do_HEAD = do_GET

        def do_POST(self):
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
            if url.path == "/stats/reset":
                with stats.lock:
                    stats.reset()
                self.reply(200, {})
                return
            if url.path != cfg.path:
                self.reply(404, {"errors": [{"code": "NOT_FOUND", "message": url.path}]})
                return
            form = parse_qs(raw, keep_blank_values=True)
            grant = form.get("grant_type", [""])[0]
            user = self.basic_user()
            if grant == "password":
                user = self.check(
                    form.get("username", [""])[0], form.get("password", [""])[0]
                )
            elif grant == "refresh_token":
                tok = form.get("refresh_token", [""])[0]
                user = cfg.user if tok == "refresh-" + cfg.user else False
            self.token_response(
                form.get("service", [""])[0], form.get("scope", []), user, refresh=True
            )

    return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--key", required=True, help="RSA private key (PEM)")
    ap.add_argument("--cert", required=True, help="certificate for x5c (PEM)")
    ap.add_argument("--issuer", required=True)
    ap.add_argument("--user", default="testuser")
    ap.add_argument("--password", default="testpass")
    ap.add_argument("--ttl", type=int, default=300, help="token lifetime, seconds")
    ap.add_argument("--path", default="/token")
    cfg = ap.parse_args()
    stats = Stats()
    srv = TokenServer((cfg.host, cfg.port), make_handler(cfg, stats))
    sys.stderr.write("token server listening on %s:%d\n" % (cfg.host, cfg.port))
    sys.stderr.flush()
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
