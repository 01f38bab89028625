#!/usr/bin/env python3
"""Runs the README's curl examples as written, against a fresh server.

    python3 ci/readme_examples.py target/release/keygate

Every `sh` block from "## Using the API with curl" to "## Domains and key
verification" runs in order, in one working directory, as a reader would paste it:
the only change is the port (a free one instead of 3000). A line such as
`KEY=kg_...   # yours: "key" above` stands for a value the reader copies from an
earlier answer: it is replaced by that field of the latest answer that has it.
Fails when a block exits non-zero, when an answer is an error (`"code"` with an
error status), or when the last block made no application.
"""

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
YOURS = re.compile(r'^(\w+)=\S+\s+# yours: "(\w+)" above\s*$')
ERROR_CODES = ("BAD_REQUEST", "UNAUTHORIZED", "FORBIDDEN", "NOT_FOUND", "CONFLICT",
               "TOO_MANY_REQUESTS", "INTERNAL_SERVER_ERROR")


def blocks():
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    start = text.index("## Using the API with curl")
    end = text.index("## Domains and key verification")
    return re.findall(r"```sh\n(.*?)```", text[start:end], re.S)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(out):
    """The JSON documents a block printed, one per line that parses."""
    found = []
    for line in out.splitlines():
        line = line.strip()
        if line.startswith(("{", "[")):
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    # curl prints without a trailing newline: answers may share a line.
    if not found and out.strip():
        dec = json.JSONDecoder()
        rest = out.strip()
        while rest:
            try:
                doc, n = dec.raw_decode(rest)
            except json.JSONDecodeError:
                break
            found.append(doc)
            rest = rest[n:].lstrip()
    return found


def field(docs, name):
    for doc in reversed(docs):
        if isinstance(doc, dict) and isinstance(doc.get(name), str):
            return doc[name]
    return None


def main():
    binary = os.path.abspath(sys.argv[1])
    port = free_port()
    work = tempfile.mkdtemp(prefix="keygate-readme-")
    server = subprocess.Popen(
        ["timeout", "300", binary, "serve", "--listen", f"127.0.0.1:{port}",
         "--db", os.path.join(work, "keygate.db")],
        stdout=open(os.path.join(work, "server.log"), "w"), stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/api/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        env = dict(os.environ)
        seen = []
        last = []
        for n, block in enumerate(blocks(), 1):
            lines = []
            for line in block.splitlines():
                m = YOURS.match(line)
                if m:
                    value = field(seen, m.group(2))
                    if value is None:
                        sys.exit(f"block {n}: no earlier answer has {m.group(2)!r}")
                    line = f"{m.group(1)}={value}"
                lines.append(line.replace("127.0.0.1:3000", f"127.0.0.1:{port}"))
            script = "set -euo pipefail -o allexport\n" + "\n".join(lines) + "\necho\nenv -0 > .env\n"
            run = subprocess.run(["bash", "-c", script], cwd=work, env=env,
                                 capture_output=True, text=True, timeout=60)
            print(f"--- block {n}\n{block.strip()}\n>>> {run.stdout.strip()[:300]}")
            if run.returncode != 0:
                sys.exit(f"block {n} failed ({run.returncode}): {run.stderr}")
            with open(os.path.join(work, ".env"), encoding="utf-8") as f:
                env = dict(kv.split("=", 1) for kv in f.read().split("\0") if "=" in kv)
            last = answers(run.stdout)
            for doc in last:
                if isinstance(doc, dict) and doc.get("code") in ERROR_CODES:
                    sys.exit(f"block {n} answered an error: {doc}")
            seen.extend(last)
        if not field(last, "applicationId"):
            sys.exit(f"the last block made no application: {last}")
        print("==> The README's curl examples ran as written")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
