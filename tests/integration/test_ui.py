"""`sgemu ui` in a real headless browser (the distribution's Chromium, driven by Playwright) on the
three-tier lab: real connections show up at the ENI and direction where the engine decided them, with the
deciding rule or reason; a click explains a drop or details an instance; a revoke redraws the graph at
once; no token, no page; loopback only.

Screenshots go to the test's output directory; SGEMU_UI_SCREENSHOT=docs/ui.png also refreshes the README's.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from emulator.lab import lifecycle as labs
from emulator.model import Topology
from emulator.testing.probe import probe
from emulator.topology import parse

from .reach import running

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, NFQUEUE)")]

THREE_TIER = Path(__file__).resolve().parents[2] / "topologies" / "three-tier.yaml"
LAB = "it-ui"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
README_SHOT = "ui-nacl.png"     # the richest view: drops at SG and NACL, an explain open
SHOWN_WITHIN = 15_000            # ms: the page polls twice a second; a loaded CI machine gets slack


# The private subnet's NACL refuses 8080 from alb although both SGs allow it: a drop the NACL decides.
PRIVATE_NACL = {"name": "private-acl", "subnets": ["private"],
                "ingress": [{"rule": 90, "action": "deny", "protocol": "tcp", "ports": 8080, "cidr": "10.0.1.10/32"},
                            {"rule": 100, "action": "allow", "protocol": "all", "cidr": "0.0.0.0/0"}],
                "egress": [{"rule": 100, "action": "allow", "protocol": "all", "cidr": "0.0.0.0/0"}]}


def three_tier_with_a_nacl() -> Topology:
    data = yaml.safe_load(THREE_TIER.read_text())
    data["name"] = LAB
    data["network_acls"] = [PRIVATE_NACL]
    return parse(data, str(THREE_TIER)).topology


@pytest.fixture(scope="module")
def lab() -> Iterator[str]:
    with running(three_tier_with_a_nacl()) as name:
        yield name


@pytest.fixture(scope="module")
def ui(lab: str) -> Iterator[str]:
    with serving(lab) as url:
        yield url


@contextmanager
def serving(lab: str) -> Iterator[str]:
    """`sgemu ui` on a free port; yields the URL it printed (with the token)."""
    process = subprocess.Popen([sys.executable, "-m", "emulator.cli", "ui", "--lab", lab, "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+/\?token=\S+", line)
        assert found, f"sgemu ui printed {line!r}; stderr: {process.stderr.read() if process.poll() else ''}"
        yield found.group(0)
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: scripts/setup installs Debian's chromium")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def page(browser, ui: str):
    page = browser.new_page(viewport={"width": 1400, "height": 760})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(ui)
    page.wait_for_selector("#graph svg g.node[data-node='alb']")
    yield page
    page.close()
    assert not errors, f"the page raised: {errors}"


def _sgemu(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emulator.cli", *args], capture_output=True, text=True, timeout=60)


def _exec(lab: str, node: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(labs.exec_argv(lab, node, list(argv)), capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)


def _screenshot(page, tmp_path: Path, name: str) -> Path:
    shot = tmp_path / name
    page.screenshot(path=str(shot))
    wanted = os.environ.get("SGEMU_UI_SCREENSHOT")
    if wanted and name == README_SHOT:
        shutil.copy(shot, wanted)
    print(f"screenshot: {shot}")
    return shot


def test_the_page_shows_allowed_and_dropped_flows_at_their_enis_with_their_rules(lab, page, tmp_path):
    # real clients: allowed from the internet, dropped at the destination's ingress, allowed through
    # two ENIs inside the VPC, dropped at the source's egress
    for _ in range(3):
        assert "alb" in _exec(lab, "you", "curl", "-s", "-m", "3", "http://alb").stdout
        assert probe(lab, "stranger", "alb", 22, "tcp", 1.0) == "timeout"
        assert _exec(lab, "app", "nc", "-N", "-w", "3", "db", "3306").stdout.startswith("db tcp 3306 ready")
        assert probe(lab, "alb", "db", 3306, "tcp", 1.0) == "timeout"

    row = "#flows tr[data-client='{}'][data-server='{}'][data-port='{}']"
    hop = ".hop[data-eni='{}'][data-direction='{}'][data-action='{}']"
    web = row.format("you", "alb", 80)
    page.wait_for_selector(f"{web} {hop.format('alb', 'ingress', 'ACCEPT')}"
                           "[data-rule='ingress tcp 80 from 0.0.0.0/0']", timeout=SHOWN_WITHIN)
    page.wait_for_selector(f"{web} {hop.format('alb', 'egress', 'ACCEPT')}[data-leg='reply']", timeout=SHOWN_WITHIN)
    assert page.locator(web).get_attribute("data-action") == "ACCEPT"

    ssh = row.format("stranger", "alb", 22)
    page.wait_for_selector(f"{ssh} {hop.format('alb', 'ingress', 'DROP')}[data-reason='ENI_SG_RULES_MISMATCH']",
                           timeout=SHOWN_WITHIN)
    assert page.locator(ssh).get_attribute("data-action") == "DROP"
    assert "no security group rule allows it" in page.locator(f"{ssh} .hop").first.get_attribute("title")

    database = row.format("app", "db", 3306)
    page.wait_for_selector(f"{database} {hop.format('app', 'egress', 'ACCEPT')}"
                           "[data-rule^='egress tcp 3306 to db-sg']", timeout=SHOWN_WITHIN)
    page.wait_for_selector(f"{database} {hop.format('db', 'ingress', 'ACCEPT')}"
                           "[data-rule^='ingress tcp 3306 from app-sg']", timeout=SHOWN_WITHIN)

    sideways = row.format("alb", "db", 3306)
    page.wait_for_selector(f"{sideways} {hop.format('alb', 'egress', 'DROP')}", timeout=SHOWN_WITHIN)
    assert page.locator(f"{sideways} .hop[data-eni='db']").count() == 0, \
        "a packet dropped at alb's egress never reaches db"

    # on the graph: a mark on alb's edge facing stranger, ingress, red, naming the reason on hover
    mark = page.locator("g.mark[data-eni='alb'][data-direction='ingress'][data-peer='stranger']")
    assert mark.get_attribute("data-action") == "DROP"
    assert "no security group rule allows it" in mark.locator("title").text_content()
    accepted = page.locator("g.mark[data-eni='alb'][data-direction='ingress'][data-peer='you']")
    assert accepted.get_attribute("data-action") == "ACCEPT"
    assert "alb-sg (sg-" in accepted.locator("title").text_content()
    assert page.locator("#engine").text_content() == "live"
    _screenshot(page, tmp_path, "ui.png")


def test_a_nacl_drop_shows_at_the_eni_with_the_nacl_rule_and_the_subnet_shows_its_nacl(lab, page, tmp_path):
    assert _exec(lab, "alb", "curl", "-s", "-m", "2", "http://app:8080").returncode != 0
    row = "#flows tr[data-client='alb'][data-server='app'][data-port='8080']"
    chip = page.wait_for_selector(f"{row} .hop[data-eni='app'][data-direction='ingress'][data-action='DROP']"
                                  "[data-reason='SUBNET_ACL_RESTRICTION']", timeout=SHOWN_WITHIN)
    assert "network ACL private-acl" in chip.get_attribute("title") and "rule 90 deny" in chip.text_content()
    page.wait_for_selector(f"{row} .hop[data-eni='alb'][data-direction='egress'][data-action='ACCEPT']")
    mark = page.locator("g.mark[data-eni='app'][data-direction='ingress'][data-peer='alb']")
    assert mark.get_attribute("data-action") == "DROP"
    subnet = page.locator("#graph g.cluster[data-subnet='private']")
    assert "NACL private-acl" in subnet.text_content()
    subnet.locator("text").first.click()
    page.wait_for_selector("#panel [data-nacl='private-acl']")
    assert "rule 90 deny tcp 8080 from 10.0.1.10/32" in page.locator("#panel").text_content()
    page.locator(row).click()
    page.locator("#panel h2[data-explain]", has_text="explain alb → app tcp 8080").wait_for(timeout=SHOWN_WITHIN)
    assert "private-acl" in page.locator("#panel").text_content()
    _screenshot(page, tmp_path, "ui-nacl.png")


def test_a_burst_of_connections_folds_into_one_row_that_keeps_counting(lab, page):
    selector = "#flows tr[data-client='you'][data-server='alb'][data-port='80']"
    row = page.locator(selector)
    before = int(row.get_attribute("data-packets") or 0) if row.count() else 0
    # ab: HTTP/1.0 without keep-alive, so every request is a new connection from a new port
    burst = _exec(lab, "you", "ab", "-q", "-r", "-s", "5", "-c", "4", "-t", "3", "-n", "10000000", "http://alb/")
    found = re.search(r"Complete requests:\s+(\d+)", burst.stdout)
    assert found, burst.stdout + burst.stderr
    made = int(found.group(1))
    assert made > 300, burst.stdout
    # every connection is at least SYN, ACK and FIN into alb: the row counts them all, in one row
    page.wait_for_function(f"() => Number(document.querySelector(\"{selector}\")?.dataset.packets) >= "
                           f"{before + 3 * made}", timeout=SHOWN_WITHIN)
    assert row.count() == 1
    assert page.locator("#flows tbody tr").count() < 20, "connections fold by service, not one row each"


def test_clicking_a_drop_shows_its_explain(lab, page, tmp_path):
    assert probe(lab, "stranger", "alb", 22, "tcp", 1.0) == "timeout"
    row = page.wait_for_selector("#flows tr[data-client='stranger'][data-server='alb'][data-port='22']",
                                 timeout=SHOWN_WITHIN)
    row.click()
    # the panel may still show an earlier explain: wait for this one's heading, not any
    page.locator("#panel h2[data-explain]", has_text="explain stranger → alb tcp 22").wait_for(timeout=SHOWN_WITHIN)
    panel = page.locator("#panel").text_content()
    assert "explain stranger → alb tcp 22" in panel
    assert "timeout" in page.locator("#panel .outcome").text_content()
    assert "dropped at alb's ingress" in panel and "no security group rule allows it" in panel
    _screenshot(page, tmp_path, "ui-explain.png")


def test_clicking_an_instance_shows_its_sgs_connections_and_flow_records(lab, page, tmp_path):
    assert "alb" in _exec(lab, "you", "curl", "-s", "-m", "3", "http://alb").stdout
    page.locator("#graph g.node[data-node='alb']").click()
    page.wait_for_selector("#panel h2[data-instance='alb']")
    page.wait_for_selector("#panel [data-sg='alb-sg']")
    panel = page.locator("#panel").text_content()
    assert "ingress tcp 80 from 0.0.0.0/0" in panel and "egress tcp 8080 to app-sg (sg-" in panel
    assert "203.0.113.10" in panel, "the connection table shows the curl from `you`"
    assert "REJECT" in panel and "ACCEPT" in panel, "the flow-log records show both verdicts"
    _screenshot(page, tmp_path, "ui-instance.png")


def test_a_revoke_shows_in_the_view_at_once(lab, page):
    edge = "#graph g.edge title"
    titles = page.locator(edge).all_text_contents()
    assert "alb->app" in titles
    # private-acl denies 8080 from alb: the arrow the SGs allow is drawn blocked, dashed red, in the page too
    assert page.locator("#graph g.edge.blocked title").all_text_contents() == ["alb->app"]
    stroke = page.eval_on_selector("#graph g.edge.blocked path", "p => getComputedStyle(p).stroke")
    assert stroke == "rgb(215, 38, 61)", stroke
    revoked = _sgemu("sg", "revoke-ingress", "--lab", lab, "app-sg", "--protocol", "tcp", "--port", "8080",
                     "--group", "alb-sg")
    assert revoked.returncode == 0, revoked.stderr
    try:
        started = time.monotonic()
        page.wait_for_function("() => ![...document.querySelectorAll('#graph g.edge title')]"
                               ".some(t => t.textContent === 'alb->app')", timeout=SHOWN_WITHIN)
        print(f"redrawn {time.monotonic() - started:.2f} s after the revoke returned")
        page.locator("#graph g.node[data-node='app']").click()
        page.wait_for_selector("#panel h2[data-instance='app']")
        assert "ingress tcp 8080" not in page.locator("#panel").text_content()
    finally:
        restored = _sgemu("sg", "authorize-ingress", "--lab", lab, "app-sg", "--protocol", "tcp", "--port", "8080",
                          "--group", "alb-sg")
        assert restored.returncode == 0, restored.stderr
    page.wait_for_function("() => [...document.querySelectorAll('#graph g.edge title')]"
                           ".some(t => t.textContent === 'alb->app')", timeout=SHOWN_WITHIN)


def _status(url: str, headers: dict[str, str] | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as refused:
        return refused.code


def test_a_request_without_the_token_is_refused(ui):
    base, token = ui.split("/?token=")
    for path in ("/", "/api/graph", "/api/events", "/api/node/alb", "/static/app.js",
                 "/api/explain?client=you&server=alb&port=80"):
        assert _status(base + path) == 403, path
    assert _status(f"{base}/api/graph?token=not-{token}") == 403
    assert _status(f"{base}/api/graph", {"Cookie": f"sgemu-ui-{base.rsplit(':', 1)[1]}=wrong"}) == 403
    assert _status(f"{base}/api/graph?token={token}", {"Host": f"attacker.example:{base.rsplit(':', 1)[1]}"}) == 403
    assert _status(f"{base}/api/graph?token={token}") == 200


def test_the_server_listens_on_loopback_only(ui):
    port = int(ui.split("/?token=")[0].rsplit(":", 1)[1])
    listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout.split()
    local = [word for word in listening if word.endswith(f":{port}")]
    assert local == [f"127.0.0.1:{port}"], listening
    addresses = json.loads(subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, text=True).stdout)
    others = [a["local"] for link in addresses for a in link.get("addr_info", []) if not a["local"].startswith("127.")]
    for address in others:
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://{address}:{port}/", timeout=3)


def test_a_flow_through_a_nat_gateway_flies_through_it(browser):
    """app -> updates leaves through nat-a: the page's packet goes app -> nat-a -> updates (a waypoint
    at the gateway's ENI, where the engine decided it too), not straight across."""
    data = yaml.safe_load((THREE_TIER.parent / "three-tier-nat.yaml").read_text())
    data["name"] = "it-ui-nat"
    with running(parse(data, "nat").topology) as name, serving(name) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 760})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        try:
            page.goto(url)
            page.wait_for_selector("#graph svg g.node[data-node='nat-a']")
            waypoints = """() => document.getAnimations().some((a) => a.effect && a.effect.target
                && a.effect.target.classList.contains("particle") && a.effect.getKeyframes().length === 3)"""
            deadline = time.monotonic() + SHOWN_WITHIN / 1000
            seen = False
            while not seen and time.monotonic() < deadline:
                assert probe(name, "app", "updates", 443, "tcp", 2.0) == "refused"     # its RST comes back
                seen = bool(page.evaluate(waypoints))
                for _ in range(10):
                    if seen:
                        break
                    page.wait_for_timeout(100)
                    seen = bool(page.evaluate(waypoints))
            assert seen, "no packet flew through nat-a"
            row = page.locator("#flows tr", has_text="app → updates tcp 443")
            assert row.count() and "nat-a in" in row.first.inner_text()
        finally:
            page.close()
        assert not errors, f"the page raised: {errors}"

