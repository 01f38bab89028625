#!/usr/bin/env python3
"""keygate's forward auth behind the real Traefik 3, Caddy and nginx.

Usage: python3 ci/proxies.py target/release/keygate

Starts keygate on a temporary database, an upstream on 127.0.0.1 that answers every
request with the headers it received (as JSON), and each proxy in the foreground with
the configuration under deploy/ (ports filled in). Through each proxy it checks: no
credential (401 for a client, the sign-in redirect for a browser), a key, a bearer key
and a session reaching the upstream with every identity header while the client's
forged copies and its x-api-key do not, a member without access and another
organization's key refused (403), a revoked key and a removed member refused on the
very next request, and a rate-limited key answered 429 (Traefik, Caddy) or a clean 403
(nginx, which turns a 429 into a 500). Everything listens on 127.0.0.1 and stops at the
end; the whole run takes well under a minute. Missing proxy binaries fail the run
under CI=true and are skipped otherwise.
"""

import http.client
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSWORD = "correct horse battery"
HOST = "app.localhost"
IDENTITY = ["X-Keygate-User-Id", "X-Keygate-Organization-Id", "X-Keygate-Role",
            "X-Keygate-Auth", "X-Keygate-Key-Id", "Remote-User", "Remote-Email",
            "Remote-Name", "Remote-Groups"]
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, what, secs=20):
    deadline = time.time() + secs
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {port}")


def request(port, method, path, headers=None, body=None):
    """(status, headers as a lower-cased dict, body) of one request; no redirects."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        data = None if body is None else json.dumps(body)
        h = dict(headers or {})
        if data is not None:
            h["content-type"] = "application/json"
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


class Echo(http.server.ThreadingHTTPServer):
    daemon_threads = True


class EchoHandler(http.server.BaseHTTPRequestHandler):
    def answer(self):
        body = json.dumps({"headers": [[k, v] for k, v in self.headers.items()],
                           "path": self.path}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = do_PUT = answer

    def log_message(self, *args):
        pass


class Keygate:
    def __init__(self, binary, work):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(os.path.join(work, "keygate.log"), "w")
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEYGATE_")}
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", f"127.0.0.1:{self.port}",
             "--db", os.path.join(work, "keygate.db"), "--public-url", self.base,
             "--log-level", "warn"],
            stdout=self.log, stderr=self.log, env=env, stdin=subprocess.DEVNULL)
        wait_port(self.port, self.proc, "keygate")

    def call(self, method, path, body=None, session=None, key=None):
        h = {}
        if session:
            h["cookie"] = f"keygate.session_token={session}"
            h["origin"] = self.base
        if key:
            h["x-api-key"] = key
        status, headers, data = request(self.port, method, path, h, body)
        if status != 200:
            raise RuntimeError(f"{method} {path}: {status} {data[:300]!r}")
        return headers, json.loads(data) if data else None

    def post(self, path, body, **who):
        return self.call("POST", path, body, **who)[1]

    def sign(self, path, body):
        headers, data = self.call("POST", path, body)
        token = headers["set-cookie"].split(";")[0].split("=", 1)[1]
        return token, data

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


class World:
    """An owner, two applications (one behind app.localhost), a member without access,
    a member with access, an owner's key in a second organization."""

    def __init__(self, kg):
        self.kg = kg
        self.owner, body = kg.sign("/api/auth/sign-up/email", {
            "name": "Owner", "email": "owner@example.com", "password": PASSWORD})
        self.owner_id = body["user"]["id"]
        self.org = body["session"]["activeOrganizationId"]
        self.key, self.key_id = self.new_key("proxies")
        p = kg.post("/api/project.create", {"name": "site"}, key=self.key)
        self.project = p["project"]["projectId"]
        self.env = p["environment"]["environmentId"]
        self.app = kg.post("/api/application.create",
                           {"name": "web", "environmentId": self.env}, key=self.key)["applicationId"]
        kg.post("/api/domain.create", {"applicationId": self.app, "host": HOST}, key=self.key)
        # A second organization of the owner's, and a key acting there.
        org2 = kg.post("/api/organization.create", {"name": "Other"}, session=self.owner)["id"]
        self.foreign_key, _ = self.new_key("elsewhere", org=org2)

    def new_key(self, name, org=None, **extra):
        body = {"name": name, "metadata": {"organizationId": org or self.org}, **extra}
        k = self.kg.post("/api/user.createApiKey", body, session=self.owner)
        return k["key"], k["id"]

    def member(self, email, sees_app):
        m = self.kg.post("/api/user.createUserWithCredentials",
                         {"email": email, "password": PASSWORD, "name": "Member",
                          "role": "member"}, key=self.key)
        lists = {"accessedProjects": [self.project], "accessedEnvironments": [self.env],
                 "accessedServices": [self.app]} if sees_app else {}
        self.kg.post("/api/user.assignPermissions", {"userId": m["userId"], **lists},
                     key=self.key)
        token, _ = self.kg.sign("/api/auth/sign-in/email", {"email": email, "password": PASSWORD})
        return m["userId"], token


def render(src_dir, dst_dir, values):
    os.makedirs(dst_dir, exist_ok=True)
    for name in os.listdir(src_dir):
        with open(os.path.join(src_dir, name)) as f:
            text = f.read()
        for k, v in values.items():
            text = text.replace("{{" + k + "}}", v)
        with open(os.path.join(dst_dir, name), "w") as f:
            f.write(text)


def find(binary, extra=()):
    for c in [shutil.which(binary), *extra]:
        if c and os.path.exists(c):
            return c
    return None


def traefik_binary():
    import sysconfig
    scripts = sysconfig.get_path("scripts")
    return find("traefik", [os.path.join(scripts, "traefik"),
                            os.path.expanduser("~/.local/bin/traefik")])


def start_proxy(name, work, kg, upstream):
    port = free_port()
    d = os.path.join(work, name)
    log = open(os.path.join(work, f"{name}.log"), "w")
    if name == "traefik":
        binary = traefik_binary()
        if not binary:
            return None
        render(os.path.join(ROOT, "deploy/traefik"), d, {
            "LISTEN": f"127.0.0.1:{port}", "DIR": d, "KEYGATE": kg.base,
            "UPSTREAM": f"http://127.0.0.1:{upstream}"})
        cmd = [binary, f"--configFile={d}/traefik.yml"]
    elif name == "caddy":
        binary = find("caddy")
        if not binary:
            return None
        render(os.path.join(ROOT, "deploy/caddy"), d, {
            "LISTEN": str(port), "KEYGATE": f"127.0.0.1:{kg.port}",
            "UPSTREAM": f"127.0.0.1:{upstream}"})
        cmd = [binary, "run", "--config", f"{d}/Caddyfile", "--adapter", "caddyfile"]
    else:
        binary = find("nginx", ["/usr/sbin/nginx"])
        if not binary:
            return None
        render(os.path.join(ROOT, "deploy/nginx"), d, {
            "LISTEN": f"127.0.0.1:{port}", "KEYGATE": f"127.0.0.1:{kg.port}",
            "UPSTREAM": f"127.0.0.1:{upstream}"})
        os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
        cmd = [binary, "-p", d + "/", "-c", f"{d}/nginx.conf", "-g", "daemon off;"]
    env = dict(os.environ, HOME=work, XDG_DATA_HOME=work, XDG_CONFIG_HOME=work)
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env)
    try:
        wait_port(port, proc, name)
    except RuntimeError:
        proc.kill()
        log.close()
        print(open(log.name).read())
        raise
    # Traefik listens before its file provider has loaded the routes: until then it
    # answers 404.
    deadline = time.time() + 15
    while through(port)[0] == 404 and time.time() < deadline:
        time.sleep(0.1)
    return proc, port, log


def through(port, path="/", who=None, extra=None, method="GET"):
    h = {"host": HOST}
    if who and who[0] == "key":
        h["x-api-key"] = who[1]
    elif who and who[0] == "bearer":
        h["authorization"] = f"Bearer {who[1]}"
    elif who and who[0] == "session":
        h["cookie"] = f"keygate.session_token={who[1]}"
    h.update(extra or {})
    return request(port, method, path, h)


def upstream_headers(body):
    return {k.lower(): v for k, v in json.loads(body)["headers"]}


def run_checks(name, port, w):
    p = f"{name}:"
    # 1. No credential.
    status, _, _ = through(port, "/x")
    check(status == 401, f"{p} no credential from a client is 401 (got {status})")
    status, h, _ = through(port, "/x?y=1", extra={"accept": "text/html,application/xhtml+xml"})
    loc = h.get("location", "")
    # The original URL as the client asked for it: its Host header, here without a port.
    want = w.kg.base + "/?rd=" + urllib.parse.quote(f"http://{HOST}/x?y=1", safe="")
    check(status == 302 and loc == want,
          f"{p} a browser without a session is sent to sign-in ({status} {loc!r})")

    # 2. Key, bearer key, session: identity reaches the upstream, forgeries do not.
    forged = {"remote-user": "evil", "x-keygate-user-id": "evil", "remote-groups": "owner,evil"}
    for who, auth, key_id in [(("key", w.key), "api_key", w.key_id),
                              (("bearer", w.key), "api_key", w.key_id),
                              (("session", w.owner), "session", "-")]:
        status, _, body = through(port, "/page", who, forged)
        if status != 200:
            check(False, f"{p} {who[0]} reaches the upstream (got {status} {body[:200]!r})")
            continue
        got = upstream_headers(body)
        want = [w.owner_id, w.org, "owner", auth, key_id, "owner@example.com",
                "owner@example.com", "Owner", "owner"]
        seen = [got.get(n.lower()) for n in IDENTITY]
        check(seen == want, f"{p} {who[0]}: the upstream gets every identity header ({seen})")
        check("x-api-key" not in got, f"{p} {who[0]}: x-api-key does not reach the upstream")

    # 3. A member without access, another organization's key.
    status, _, _ = through(port, "/", ("session", w.blind))
    check(status == 403, f"{p} a member without access is 403 (got {status})")
    status, _, _ = through(port, "/", ("key", w.foreign_key))
    check(status == 403, f"{p} another organization's key is 403 (got {status})")

    # 4. Revoked and removed, on the very next request.
    key, key_id = w.new_key(f"revoked-{name}")
    first, _, _ = through(port, "/", ("key", key))
    w.kg.post("/api/user.deleteApiKey", {"apiKeyId": key_id}, session=w.owner)
    then, _, _ = through(port, "/", ("key", key))
    check(first == 200 and then == 401, f"{p} a revoked key is refused next ({first} then {then})")
    user, token = w.member(f"removed-{name}@example.com", sees_app=True)
    first, _, _ = through(port, "/", ("session", token))
    w.kg.post("/api/user.remove", {"userId": user}, key=w.key)
    then, _, _ = through(port, "/", ("session", token))
    check(first == 200 and then == 403, f"{p} a removed member is refused next ({first} then {then})")

    # 5. A rate-limited key.
    limited, _ = w.new_key(f"limited-{name}", rateLimitEnabled=True, rateLimitMax=2,
                           rateLimitTimeWindow=60_000)
    answers = [through(port, "/", ("key", limited)) for _ in range(3)]
    statuses = [a[0] for a in answers]
    last_status, last_headers, _ = answers[-1]
    want = 403 if name == "nginx" else 429
    check(statuses[:2] == [200, 200] and last_status == want and "retry-after" in last_headers,
          f"{p} a rate-limited key gets {want} with Retry-After (got {statuses}, "
          f"retry-after {last_headers.get('retry-after')})")


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    binary = os.path.abspath(sys.argv[1])
    in_ci = os.environ.get("CI") == "true"
    work = tempfile.mkdtemp(prefix="keygate-proxies-")
    echo = Echo(("127.0.0.1", 0), EchoHandler)
    threading.Thread(target=echo.serve_forever, daemon=True).start()
    upstream = echo.server_address[1]
    kg = Keygate(binary, work)
    procs = []
    try:
        w = World(kg)
        _, w.blind = w.member("blind@example.com", sees_app=False)
        for name in ["traefik", "caddy", "nginx"]:
            started = start_proxy(name, work, kg, upstream)
            if started is None:
                check(not in_ci, f"{name}: binary not found" + (" (skipped)" if not in_ci else ""))
                continue
            proc, port, log = started
            procs.append((proc, log))
            try:
                run_checks(name, port, w)
            finally:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
    finally:
        for proc, log in procs:
            if proc.poll() is None:
                proc.kill()
            log.close()
        kg.stop()
        echo.shutdown()
        if failures:
            for name in ["keygate", "traefik", "caddy", "nginx"]:
                path = os.path.join(work, f"{name}.log")
                if os.path.exists(path):
                    print(f"--- {name}.log ---\n" + open(path).read()[-3000:])
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        print(f"{len(failures)} check(s) failed")
        sys.exit(1)
    print("all proxy checks passed")


if __name__ == "__main__":
    main()
