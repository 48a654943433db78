"""The dashboard in a real browser: headless Chromium (Debian's package, installed by
tools/ensure-chromium.sh) loads GET / from a worker fed with the seeded workload; every number
the page renders equals the JSON API's, and a screenshot is saved to tests/artifacts/."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import struct
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from app.generator import Workload, produce
from app.windows import HOUR_MS, hour_start, iso_ms, parse_iso
from tests.support.topics import produce as produce_records
from tests.web._cluster import SEED, eventually, start_cluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "tests" / "artifacts" / "dashboard.png"
WINDOW = (1400, 1000)


def chromium() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if path is None:
        message = "chromium is not installed (bash tools/ensure-chromium.sh installs Debian's package)"
        if any(os.environ.get(n, "").strip().lower() not in ("", "0", "false", "no") for n in ("CI", "REQUIRE_BROKER")):
            pytest.fail(message + "; CI is set, so this is an error, not a skip", pytrace=False)
        pytest.skip(message)
    return path


async def run_chromium(args: list[str], user_dir: Path, timeout: float = 90) -> str:
    cmd = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={user_dir}", *args,
    ]
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, f"chromium exited {proc.returncode}: {err.decode(errors='replace')[-2000:]}"
    return out.decode()


class Node:
    def __init__(self, tag: str, attrs: dict[str, str | None], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node] = []
        self.parts: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self.parts) + "".join(child.text for child in self.children)

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()

    def find_all(self, tag: str | None = None, **attrs: str | bool) -> list[Node]:
        def match(node: Node) -> bool:
            if tag and node.tag != tag:
                return False
            for name, want in attrs.items():
                name = name.rstrip("_").replace("_", "-")
                if name == "class":
                    if want not in (node.attrs.get("class") or "").split():
                        return False
                elif want is True:
                    if name not in node.attrs:
                        return False
                elif node.attrs.get(name) != want:
                    return False
            return True

        return [n for n in self.walk() if n is not self and match(n)]

    def one(self, tag: str | None = None, **attrs: str | bool) -> Node:
        found = self.find_all(tag, **attrs)
        assert len(found) == 1, (tag, attrs, len(found))
        return found[0]


class Dom(HTMLParser):
    VOID = {"meta", "link", "input", "br", "img", "hr", "path", "circle", "line", "rect"}

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {}, None)
        self._at = self.root
        self.feed(html)

    def handle_starttag(self, tag, attrs):  # noqa: ANN001
        node = Node(tag, dict(attrs), self._at)
        self._at.children.append(node)
        if tag not in self.VOID:
            self._at = node

    def handle_startendtag(self, tag, attrs):  # noqa: ANN001
        self._at.children.append(Node(tag, dict(attrs), self._at))

    def handle_endtag(self, tag):  # noqa: ANN001
        node = self._at
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self._at = node.parent

    def handle_data(self, data):  # noqa: ANN001
        self._at.parts.append(data)


def number(node: Node) -> int:
    """A rendered number: its data-value, checked against the text a person reads."""
    shown = int(node.text.strip().replace(",", ""))
    assert node.attrs.get("data-value") == str(shown), (node.attrs, node.text)
    return shown


async def test_dashboard_renders_the_api_numbers(kafka_bootstrap, tmp_path, capsys):
    group = start_cluster(kafka_bootstrap, tmp_path, 1)
    worker = group.workers[0]
    try:
        await worker.wait_ready(120)
        await group.feed()
        # Records of the insights topic that are not insights: skipped by every worker (and
        # counted), never served; a page that drew them would stop refreshing.
        await produce_records(kafka_bootstrap, group.env["INSIGHTS_TOPIC"], [
            (b"odd-1", b'{"insightId": "odd-1", "type": "property_hourly_spike"}'),
            (b"odd-2", b'{"insightId": "odd-2", "type": "property_hourly_spike", '
                       b'"subject": {"propertyId": "p"}, "windowStart": "yesterday", '
                       b'"windowEnd": "today", "metrics": {}, "detectedAt": "now"}'),
        ])

        async def lag_measured():  # consumer lag is measured every 5 s
            _, summary = await worker.get("/api/dashboard")
            assert summary["lag"]["total"] == 0 and summary["lag"]["partitions"]

        await eventually(lag_measured, timeout=20)

        # The previous hour, complete and busy whatever the minute now: "/?hour=" pins it.
        pinned = iso_ms(hour_start(group.now_ms) - HOUR_MS)
        html = ""
        for budget in (10_000, 20_000):
            html = await run_chromium(
                [f"--virtual-time-budget={budget}", "--dump-dom", f"{worker.url}/?hour={pinned}"],
                tmp_path / "chromium",
            )
            if 'data-state="ready"' in html:
                break
        dom = Dom(html).root
        body = dom.one("body")
        assert body.attrs.get("data-state") == "ready", html[:3000]
        assert int(body.attrs["data-refreshes"]) >= 1

        table = dom.one("table", id="trending")
        hour = table.attrs["data-hour"]
        assert hour == pinned
        hour_ms = parse_iso(hour)
        _, summary = await worker.get(f"/api/dashboard?hour={hour}&limit=10")
        rows = table.find_all("tr", data_property_id=True)
        assert len(rows) == len(summary["topProperties"]) == 10
        for row, want in zip(rows, summary["topProperties"], strict=True):
            prop = row.attrs["data-property-id"]
            assert prop == want["propertyId"]
            _, answer = await worker.get(f"/api/properties/{prop}/views?hour={hour}")
            assert number(row.one("td", class_="views")) == answer["views"] == want["views"]
            assert number(row.one("td", class_="users")) == answer["uniqueUsers"] == want["uniqueUsers"]
            # Each property with its title and status, as its aggregate says.
            _, aggregate = await worker.get(f"/api/properties/{prop}")
            assert row.attrs.get("data-title") == want.get("title") == aggregate["data"]["title"]
            assert row.attrs.get("data-status") == want.get("status") == aggregate["status"]
            cell = row.one("td", class_="property")
            assert cell.one("button", class_="open-property").text == aggregate["data"]["title"]
            assert cell.one("span", class_="status-tag").text == aggregate["status"]
            assert cell.one("span", class_="pid").text == prop
            # caught up: nothing of the stream is left out of its count
            assert row.attrs.get("data-behind") == "0" and want["behind"] == 0
            _, history = await worker.get(
                f"/api/properties/{prop}/views/history"
                f"?from={iso_ms(hour_ms - 23 * HOUR_MS)}&to={iso_ms(hour_ms + HOUR_MS)}"
            )
            spark = row.one("svg", class_="sparkline")
            assert spark.attrs["data-values"] == ",".join(str(w["views"]) for w in history["windows"])

        assert number(dom.one(id="kpi-hour-views")) == summary["hourViews"]
        assert number(dom.one(id="kpi-lag")) == summary["lag"]["total"] == 0
        assert summary["behind"]["total"] == 0
        assert dom.one(id="kpi-hour-behind").text == "up to date with the stream"
        assert number(dom.one(id="tally-accepted")) == summary["totals"]["accepted"]
        assert number(dom.one(id="tally-duplicate")) == summary["totals"]["duplicate"]
        assert number(dom.one(id="tally-rejected")) == summary["totals"]["rejected"] > 0
        assert dom.one(id="coverage").text.startswith("Partitions 6/6 answered")

        segments = dom.one("div", id="segments")
        week = segments.attrs["data-week"]
        cards = segments.find_all("div", class_="segment")
        listed = [s["segment"] for s in summary["week"]["segments"]]
        assert {c.attrs["data-segment"] for c in cards} == set(listed)
        assert len(cards) >= 5 and summary["week"]["segmentCount"] == len(cards)
        # One refresh: the summary, the insights and one sparkline per top property; the
        # segments come with the summary, however many there are.
        assert int(body.attrs["data-requests"]) == 2 + len(rows)
        for card in cards:
            _, answer = await worker.get(f"/api/segments/{card.attrs['data-segment']}/weeks/{week}")
            assert number(card.one(class_="seg-views")) == answer["views"]
            assert number(card.one(class_="seg-users")) == answer["uniqueUsers"]
            shown = [(li.attrs["data-property-id"], int(li.attrs["data-views"])) for li in card.find_all("li")]
            assert shown == [(p["propertyId"], p["views"]) for p in answer["topProperties"][:3]]

        # The property page of the first trending property: aggregate, history, 48 h of views.
        prop = rows[0].attrs["data-property-id"]
        page = ""
        for budget in (10_000, 20_000):
            page = await run_chromium(
                [f"--virtual-time-budget={budget}", "--dump-dom", f"{worker.url}/?property={prop}"],
                tmp_path / "chromium-property",
            )
            if 'class="facts"' in page:
                break
        panel = Dom(page).root.one("section", id="property-page")
        assert "hidden" not in panel.attrs and panel.attrs["data-property-id"] == prop
        _, aggregate = await worker.get(f"/api/properties/{prop}")
        facts = panel.one("dl", class_="facts")
        assert (facts.attrs["data-status"], int(facts.attrs["data-version"])) == (
            aggregate["status"], aggregate["version"])
        _, events = await worker.get(f"/api/properties/{prop}/events")
        shown = [int(li.attrs["data-version"]) for li in panel.one("ol", id="property-history").find_all("li")]
        assert shown == [e["version"] for e in events["events"]] and shown[0] == 1
        assert int(panel.one(id="property-hours").attrs["data-total"]) > 0

        _, insights = await worker.get("/api/insights?limit=20")
        shown_ids = [li.attrs["data-insight-id"] for li in dom.one("ol", id="insights").find_all("li")]
        assert shown_ids and shown_ids == [i["insightId"] for i in insights["insights"]]
        assert not {"odd-1", "odd-2"} & set(shown_ids)
        assert dom.one("ol", id="insights").attrs["data-skipped"] == "0"
        _, metrics = await worker.get("/metrics")
        counted = f'readmodel_records_skipped_total{{topic="{group.env["INSIGHTS_TOPIC"]}"}} '
        [line] = [line for line in metrics.splitlines() if counted in line]
        assert float(line.rsplit(" ", 1)[1]) >= 2, line  # each time the tail reads them

        # The screenshot, with some live traffic so that throughput has something to show.
        live = Workload(seed=SEED + 1, users=400, properties=80, burst_every=0)
        feeding = asyncio.create_task(produce(
            group.env["VIEWS_TOPIC"], live.views(None, int(time.time() * 1000), 25),
            {"bootstrap_servers": kafka_bootstrap}, rate=40,
        ))
        await asyncio.sleep(12)
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        SCREENSHOT.unlink(missing_ok=True)
        await run_chromium(
            ["--virtual-time-budget=8000", "--hide-scrollbars", f"--window-size={WINDOW[0]},{WINDOW[1]}",
             f"--screenshot={SCREENSHOT}", worker.url + "/"],
            tmp_path / "chromium-shot",
        )
        feeding.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeding
        png = SCREENSHOT.read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", png[16:24]) == WINDOW
        assert len(png) > 50_000, "a rendered page, not a blank one"
        with capsys.disabled():
            print(f"\n[test_dashboard_browser] screenshot: {SCREENSHOT.relative_to(REPO)}")
    finally:
        group.stop()
