"""What the dashboard's browser checks share: keygate started on a temporary database, an
HTTP client with a session cookie, headless Chromium through Selenium, and the browser's
console, kept whole for the end of the run.

A check that fails is counted and the run goes on; at the end (or on an exception) the
script saves a screenshot and the whole console log under $BROWSER_ARTIFACTS (by
default target/browser-artifacts) and prints the log. A console error the script did
not expect, or any Content Security Policy violation, is a failure.
"""

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

PASSWORD = "correct horse battery"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)
    return ok


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """keygate on 127.0.0.1:`port`, stopped by its pid."""

    def __init__(self, binary, db, port, log, extra=()):
        self.cmd = [binary, "serve", "--listen", f"127.0.0.1:{port}", "--db", db, *extra]
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log = log
        self.proc = None

    def start(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEYGATE_")}
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL, env=env)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("keygate did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Client:
    """HTTP with one session cookie, as a browser on the dashboard's origin."""

    def __init__(self, port, agent="keygate-browser-check/1"):
        self.port = port
        self.agent = agent
        self.cookie = None

    def call(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        h = {"Origin": f"http://127.0.0.1:{self.port}", "User-Agent": self.agent, **(headers or {})}
        if self.cookie:
            h["Cookie"] = self.cookie
        data = None
        if body is not None:
            h["Content-Type"] = "application/json"
            data = json.dumps(body)
        c.request(method, path, data, h)
        r = c.getresponse()
        text = r.read().decode()
        for name, value in r.getheaders():
            if name.lower() == "set-cookie" and value.split("=", 1)[1].split(";")[0]:
                self.cookie = value.split(";")[0]
        c.close()
        return r.status, json.loads(text) if text else None


class Browser:
    """Headless Chromium, with the console kept as it is read."""

    def __init__(self):
        opts = webdriver.ChromeOptions()
        for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,1000"]:
            opts.add_argument(arg)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        opts.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
        # A local driver: Selenium Manager would look for one on the network.
        self.d = webdriver.Chrome(options=opts, service=webdriver.ChromeService(shutil.which("chromedriver")))
        self.d.set_page_load_timeout(20)
        self.d.set_script_timeout(20)
        self.console = []
        self.seen = 0

    def read_console(self):
        self.console.extend(self.d.get_log("browser"))

    def problems(self, expected=()):
        """The console's errors since the last call, but the refusals in `expected`."""
        self.read_console()
        bad = []
        for entry in self.console[self.seen:]:
            msg = entry["message"]
            if "Content Security Policy" in msg or "Refused to" in msg:
                bad.append(msg)
            elif entry["level"] == "SEVERE" and not any(p in msg for p in expected):
                bad.append(msg)
        self.seen = len(self.console)
        return bad

    def keep(self, name):
        """Saves a screenshot and the whole console; prints where, and the console."""
        out = os.environ.get("BROWSER_ARTIFACTS", os.path.join(ROOT, "target", "browser-artifacts"))
        os.makedirs(out, exist_ok=True)
        shot = os.path.join(out, f"{name}.png")
        log = os.path.join(out, f"{name}-console.log")
        try:
            self.d.save_screenshot(shot)
            self.read_console()
        except Exception as err:  # The browser may be gone; keep what there is.
            print(f"(no screenshot: {err})")
        with open(log, "w") as f:
            for e in self.console:
                f.write(f"{e.get('timestamp')} {e.get('level')} {e.get('message')}\n")
        print(f"kept {shot} and {log}; the console:")
        for e in self.console[-60:]:
            print(f"  {e.get('level')} {e.get('message')}")

    def quit(self):
        self.d.quit()


def sign_in(d, base, email, password=PASSWORD, url="/"):
    d.get(base + url)
    wait = WebDriverWait(d, 10)
    field = wait.until(EC.visibility_of_element_located((By.ID, "in-email")))
    field.clear()
    field.send_keys(email)
    d.find_element(By.ID, "in-password").send_keys(password + Keys.ENTER)


def signed_in(d):
    WebDriverWait(d, 10).until(EC.visibility_of_element_located((By.ID, "app")))


def sign_out(d):
    d.find_element(By.ID, "sign-out").click()
    WebDriverWait(d, 10).until(EC.visibility_of_element_located((By.ID, "in-email")))


def goto(d, section):
    """Opens a section through the page's navigation: one section shows at a time."""
    d.find_element(By.CSS_SELECTOR, f'nav.sections a[data-nav="{section}"]').click()
    WebDriverWait(d, 5).until(lambda d: d.find_element(
        By.CSS_SELECTOR, f'[data-route="{section}"]').is_displayed())


def run(name, body):
    """Runs `body(browser)`, keeps the evidence when anything failed, and exits 1 then."""
    b = None
    try:
        b = Browser()
        body(b)
    except Exception:
        import traceback
        traceback.print_exc()
        failures.append("an exception")
    finally:
        if b:
            if failures:
                b.keep(name)
            b.quit()
    if failures:
        print(f"{len(failures)} check(s) failed")
        sys.exit(1)
    print("all checks passed")
