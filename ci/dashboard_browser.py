#!/usr/bin/env python3
"""The dashboard's Activity section and key usage charts in headless Chromium.

Usage: python3 ci/dashboard_browser.py target/debug/keygate

Starts keygate on 127.0.0.1 with a temporary database and fills it over HTTP: the first
user, a rate-limited key used past its limit, a disabled key used anyway (refusals the
flush counts), a failed sign-in, enough key renames for a second page of the audit log,
and a member. It then stops keygate, ages one key by 40 days in the database (so that
it is unused), starts keygate again, and checks through Selenium: the Activity section
lists the events, its filters and "Load more" work, a refused filter keeps its input, a
member's refused organization log offers the account view, the unused badge marks the
aged key alone, a key's chart draws non-zero stacked bars per day and per hour over 7
and 30 days with its totals as text, the page fits 360 px, and the browser logged no
error and no Content Security Policy violation. Needs `chromium`, `chromedriver` and
the `selenium` package; the run takes under a minute. In CI.
"""

import os
import sqlite3
import sys
import tempfile
import time

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from browser import PASSWORD, Client, Server, check, free_port, goto, run, sign_in, signed_in

OWNER = "ada@example.com"
MEMBER = "bob@example.com"
RENAMES = 55
AGENT = "keygate-dashboard-check/1 (Python http.client; a user agent longer than forty characters)"


def seed(port):
    """Fills a new server; answers the ids of the keys by name."""
    owner = Client(port, AGENT)
    st, _ = owner.call("POST", "/api/auth/sign-up/email",
                       {"name": "Ada", "email": OWNER, "password": PASSWORD})
    assert st == 200, st
    _, org = owner.call("GET", "/api/organization.active")
    meta = {"organizationId": org["id"]}
    keys = {}
    for name, extra in [("deploy-bot", {"rateLimitMax": 3, "rateLimitTimeWindow": 60000}),
                        ("old-cron", {}), ("idle", {}), ("renamed", {})]:
        st, k = owner.call("POST", "/api/user.createApiKey", {"name": name, "metadata": meta, **extra})
        assert st == 200, (st, k)
        keys[name] = k
    use = Client(port, AGENT)
    codes = [use.call("GET", "/api/project.all", headers={"x-api-key": keys["deploy-bot"]["key"]})[0]
             for _ in range(6)]
    assert codes == [200] * 3 + [429] * 3, codes
    use.call("GET", "/api/project.all", headers={"x-api-key": keys["old-cron"]["key"]})
    owner.call("POST", "/api/user.updateApiKey", {"apiKeyId": keys["old-cron"]["id"], "enabled": False})
    for _ in range(4):
        st, _ = use.call("GET", "/api/project.all", headers={"x-api-key": keys["old-cron"]["key"]})
        assert st == 401, st
    st, _ = Client(port, AGENT).call("POST", "/api/auth/sign-in/email", {"email": OWNER, "password": "not the password"})
    assert st == 401, st
    for i in range(RENAMES):
        owner.call("POST", "/api/user.updateApiKey", {"apiKeyId": keys["renamed"]["id"], "name": f"renamed-{i}"})
    st, m = owner.call("POST", "/api/user.createUserWithCredentials",
                       {"email": MEMBER, "password": PASSWORD, "name": "Bob", "role": "member"})
    assert st == 200, (st, m)
    return {name: k["id"] for name, k in keys.items()}


def age_key(db, key_id, days):
    c = sqlite3.connect(db)
    c.execute("UPDATE api_keys SET created_at = created_at - ? WHERE id = ?",
              (days * 86400 * 1000, key_id))
    c.commit()
    c.close()


def rows(d):
    return d.find_elements(By.CSS_SELECTOR, "#activity-table tbody tr")


def settled(d):
    """Waits for the Activity section's answer."""
    WebDriverWait(d, 10).until(
        lambda d: d.find_element(By.ID, "activity-status").text != "Loading…")


def owner_checks(br, base, ids):
    d = br.d
    wait = WebDriverWait(d, 10)
    sign_in(d, base, OWNER)
    signed_in(d)
    wait.until(lambda d: len(rows(d)) > 0)
    settled(d)

    # Navigation reaches the section.
    goto(d, "activity")
    check(d.execute_script("return location.hash") == "#/activity", "the section link leads to Activity")
    check(d.switch_to.active_element.get_attribute("id") == "activity-title", "focus moves to its heading")

    pressed = d.find_element(By.CSS_SELECTOR, '#activity [data-view="organization"]').get_attribute("aria-pressed")
    check(pressed == "true", "an owner starts on the organization's log")
    first = len(rows(d))
    check(first == 50, f"the first page holds 50 events ({first})")
    more = d.find_element(By.ID, "activity-more")
    check(more.is_displayed(), "Load more is offered")
    text = d.find_element(By.ID, "activity-table").text
    check("apikey.rename" in text, "key renames are listed")
    more.click()
    wait.until(lambda d: len(rows(d)) > first)
    settled(d)
    while d.find_element(By.ID, "activity-more").is_displayed():
        n = len(rows(d))
        d.find_element(By.ID, "activity-more").click()
        wait.until(lambda d: len(rows(d)) > n)
        settled(d)
    total = len(rows(d))
    text = d.find_element(By.ID, "activity-table").text
    check(total > 60 and "organization.create" in text, f"Load more reaches the oldest event ({total} in all)")
    check("apikey.refused" in text and "×4" in text, "the counted refusal shows ×4")
    times = d.execute_script(
        "return [...document.querySelectorAll('#activity-table tbody time')].map(t => t.dateTime)")
    check(times == sorted(times, reverse=True), "newest first")
    agent = d.find_element(By.CSS_SELECTOR, "#activity-table tbody td.agent[title]")
    titles = [a.get_attribute("title") for a in d.find_elements(By.CSS_SELECTOR, "#activity-table td.agent[title]")]
    shown = [a.text for a in d.find_elements(By.CSS_SELECTOR, "#activity-table td.agent[title]")]
    check(AGENT in titles and all(len(t) <= 40 for t in shown),
          f"user agents are shortened, whole in their title ({sorted(set(shown))})")

    # Filters.
    action = d.find_element(By.ID, "activity-action")
    action.send_keys("apikey.refused" + Keys.ENTER)
    wait.until(lambda d: len(rows(d)) == 1)
    settled(d)
    row = rows(d)[0].text
    check("apikey.refused" in row and "×4" in row, f"the action filter leaves one event: {row!r}")
    check(not d.find_element(By.ID, "activity-more").is_displayed(), "no Load more after the last page")
    action.clear()
    d.find_element(By.ID, "activity-resource-id").send_keys(ids["deploy-bot"] + Keys.ENTER)
    wait.until(lambda d: 0 < len(rows(d)) <= 2)
    check(all(ids["deploy-bot"] in r.text for r in rows(d)), "the resource filter keeps that key's events")
    d.find_element(By.ID, "activity-clear").click()
    wait.until(lambda d: len(rows(d)) == 50)
    settled(d)

    # A span that ends before it starts: the server's refusal, the input kept.
    for field, value in [("activity-from", "2026-12-10"), ("activity-to", "2026-12-01")]:
        d.execute_script("arguments[0].value = arguments[1]", d.find_element(By.ID, field), value)
    d.find_element(By.ID, "activity-action").send_keys("session.sign_in" + Keys.ENTER)
    error = d.find_element(By.CSS_SELECTOR, "#activity-form .error")
    wait.until(lambda d: error.is_displayed())
    check("after" in error.text, f"a reversed span is refused: {error.text!r}")
    kept = [d.find_element(By.ID, i).get_attribute("value") for i in ["activity-action", "activity-from", "activity-to"]]
    check(kept == ["session.sign_in", "2026-12-10", "2026-12-01"], f"the form keeps its input ({kept})")
    check(d.find_element(By.ID, "activity-to").get_attribute("aria-invalid") == "true", "the field is marked")
    d.find_element(By.ID, "activity-clear").click()
    wait.until(lambda d: not error.is_displayed() and len(rows(d)) == 50)

    # The account's own events, with the filter of the form.
    d.find_element(By.ID, "activity-action").send_keys("session.sign_in_failed")
    d.find_element(By.CSS_SELECTOR, '#activity [data-view="account"]').click()
    wait.until(lambda d: len(rows(d)) == 1 and "session.sign_in_failed" in rows(d)[0].text)
    check("email: ada@example.com" in rows(d)[0].text, f"My account lists the failed sign-in: {rows(d)[0].text!r}")
    d.find_element(By.ID, "activity-clear").click()

    # Keys: the unused badge, then the chart.
    goto(d, "keys")
    badges = d.execute_script(
        "return [...document.querySelectorAll('#keys-table tbody tr')].map(r => "
        "[r.querySelector('td.name').firstChild.textContent, r.querySelector('.badge.warn')?.textContent || ''])")
    flagged = [n for n, b in badges if b]
    check(flagged == ["idle"] and dict(badges)["idle"] == "Unused 30+ days", f"only the aged key is unused: {badges}")

    button = d.find_element(By.CSS_SELECTOR, f'#keys-table button[data-action="usage"][data-id="{ids["deploy-bot"]}"]')
    d.execute_script("arguments[0].focus()", button)
    button.send_keys(Keys.ENTER)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#usage-chart svg"))
    check(button.get_attribute("aria-expanded") == "true", "the usage button says it is open")
    check(d.switch_to.active_element.get_attribute("id") == "usage-title", "focus moves to the chart's heading")

    def bars():
        return d.execute_script(
            "return [...document.querySelectorAll('#usage-chart svg rect')].map(r => "
            "[r.getAttribute('class'), Number(r.getAttribute('height')), getComputedStyle(r).fill])")

    def summary():
        return d.find_element(By.CSS_SELECTOR, "#usage-chart svg title").get_attribute("textContent")

    b = bars()
    check(len(b) == 2 and all(h > 0 for _, h, _ in b), f"a day's bar stacks ok and rate limited: {b}")
    check(len({f for _, _, f in b}) == 2 and all(f.startswith("rgb") for _, _, f in b), "the classes colour the bars")
    check("6 in all" in summary() and "3 ok" in summary() and "3 rate limited" in summary(), summary())
    legend = d.find_element(By.ID, "usage-legend").text
    legend = " ".join(legend.split())
    check("ok: 3" in legend and "rate limited: 3" in legend and "refused: 0" in legend, f"legend {legend!r}")
    check("UTC" in d.find_element(By.CSS_SELECTOR, "#usage figcaption").text, "the caption says UTC")
    ticks = d.execute_script("return [...document.querySelectorAll('#usage-chart svg text')].map(t => t.textContent)")
    check("Requests" in ticks and "Day (UTC)" in ticks, f"axis titles ({ticks[-3:]})")
    last = d.find_element(By.ID, "usage-last-address").text + " " + d.find_element(By.ID, "usage-last-agent").text
    check("127.0.0.1" in last and "Python" in last, f"the last client: {last!r}")
    Select(d.find_element(By.ID, "usage-step")).select_by_value("hour")
    wait.until(lambda d: "per hour" in summary())
    check(len(bars()) == 2, "per hour over 7 days")
    Select(d.find_element(By.ID, "usage-span")).select_by_value("30")
    wait.until(lambda d: "last 30 days" in summary())
    check(len(bars()) == 2, "per hour over 30 days")
    rows_text = d.execute_script("return document.querySelector('#usage-table tbody').textContent")
    check("3" in rows_text, "the counts as a table")
    d.find_element(By.ID, "usage-close").click()
    check(d.find_element(By.ID, "usage").is_displayed() is False
          and d.switch_to.active_element.get_attribute("data-id") == ids["deploy-bot"], "closing returns focus")

    # A phone's width: nothing wider than the window but the tables' own scrolling.
    d.set_window_size(360, 800)
    button = d.find_element(By.CSS_SELECTOR, f'#keys-table button[data-action="usage"][data-id="{ids["deploy-bot"]}"]')
    d.execute_script("arguments[0].click()", button)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#usage-chart svg"))
    time.sleep(0.3)
    width = d.execute_script("return [document.documentElement.scrollWidth, innerWidth,"
                             " document.querySelector('#usage-chart svg').getBoundingClientRect().width]")
    check(width[0] <= width[1] and width[2] <= width[1], f"360 px: page {width[0]}, window {width[1]}, chart {width[2]}")
    d.set_window_size(1280, 1000)

    # The one refusal asked for: the reversed span (400).
    problems = br.problems(["/api/audit.all?action=session.sign_in&from=2026-12-10"])
    check(not problems, f"the owner's browser log is clean (but the reversed span): {problems}")


def member_checks(br, base):
    d = br.d
    wait = WebDriverWait(d, 10)
    d.delete_all_cookies()
    sign_in(d, base, MEMBER)
    signed_in(d)
    goto(d, "activity")
    settled(d)
    check(d.find_element(By.CSS_SELECTOR, '#activity [data-view="account"]').get_attribute("aria-pressed") == "true",
          "a member starts on its account's events")
    d.find_element(By.CSS_SELECTOR, '#activity [data-view="organization"]').click()
    error = d.find_element(By.CSS_SELECTOR, "#activity-form .error")
    wait.until(lambda d: error.is_displayed())
    offer = error.find_elements(By.CSS_SELECTOR, "button[data-view-account]")
    check(bool(offer) and len(rows(d)) == 0, f"the refusal is shown with an offer: {error.text!r}")
    offer[0].click()
    wait.until(lambda d: not error.is_displayed() and len(rows(d)) > 0)
    check("session.sign_in" in d.find_element(By.ID, "activity-table").text, "the offer opens the account view")
    problems = br.problems(["/api/audit.all"])
    check(not problems, f"the member's browser log is clean (but the refused audit.all): {problems}")


def main():
    binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/debug/keygate")
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "keygate.db")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with open(os.path.join(tmp, "keygate.log"), "w") as log:
            server = Server(binary, db, port, log)
            try:
                server.start()
                ids = seed(port)
                # The refusals are written by the usage flush, every 2 seconds; a clean stop
                # writes the rest.
                time.sleep(2.5)
                server.stop()
                age_key(db, ids["idle"], 40)
                server.start()

                def checks(b):
                    owner_checks(b, base, ids)
                    member_checks(b, base)

                run("dashboard_browser", checks)
            finally:
                server.stop()


if __name__ == "__main__":
    main()
