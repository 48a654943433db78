"""``/api/properties/{id}/events`` pages (``app.web.api.events_answer``): bounded in events
and in bytes, so that no page, relayed or not, exceeds what a worker relays for a peer
(``routing.MAX_ANSWER_BYTES``); ``nextAfterVersion`` continues a page exactly."""

from __future__ import annotations

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.engine.transactions import Outbox
from app.properties.aggregate import PropertyState, StoredEvent, apply
from app.models.events import PropertyEvent
from app.settings import Settings
from app.stages.properties import PropertiesConfig, PropertiesProcessor
from app.tables.properties import PropertyTable
from app.web import routing
from app.web.api import EVENTS_PAGE_BYTES, events_answer
from app.windows import iso_ms

from ..stores import commit

T0 = 1_790_000_000_000
NOW = T0 + 86_400_000
WIDE = "😀" * 1000  # the longest title or city: 4,000 UTF-8 bytes


def all_pages(table: PropertyTable, prop: str, limit: int, max_bytes: int) -> list[list[dict]]:
    pages, after = [], 0
    while True:
        status, body = events_answer(prop, table, after, limit, max_bytes)
        assert status == 200
        pages.append(body["events"])
        if body["nextAfterVersion"] is None:
            return pages
        assert body["nextAfterVersion"] == body["events"][-1]["version"] > after
        after = body["nextAfterVersion"]
        assert len(pages) < 10_000


def test_wide_events_are_paged_under_the_relay_cap_and_the_cursor_gives_each_once(store):
    """600 events with the widest title and city: 4.9 MB in one page of 1,000 before."""
    processor = PropertiesProcessor(0, store, Outbox(), PropertiesConfig.from_settings(Settings()))
    for i in range(600):
        kind = "created" if i == 0 else "updated"
        doc = {"eventId": f"e{i}", "eventType": f"property.{kind}", "version": "1.0",
               "timestamp": iso_ms(T0 + i), "propertyId": "wide",
               "data": {"title": WIDE, "city": WIDE, "price": i}}
        processor.process(i, b"wide", orjson.dumps(doc), NOW)
    commit(store, None)
    table = PropertyTable(store.committed())
    pages = all_pages(table, "wide", 1000, EVENTS_PAGE_BYTES)
    assert len(pages) > 1
    for page in pages:
        body = orjson.dumps({"propertyId": "wide", "events": page, "nextAfterVersion": 1})
        assert len(body) <= EVENTS_PAGE_BYTES + 100 < routing.MAX_ANSWER_BYTES
    assert [e["version"] for page in pages for e in page] == list(range(1, 601))


_sizes = st.lists(st.integers(0, 3000), min_size=1, max_size=60)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=_sizes, limit=st.integers(1, 20), max_bytes=st.integers(1, 20_000), after=st.integers(0, 70))
def test_any_page_holds_at_most_limit_events_and_max_bytes_unless_one_event_is_more(
    store, sizes, limit, max_bytes, after
):
    prop = f"p{len(store.pending)}"  # a property of its own per example
    table = PropertyTable(store)
    state: PropertyState | None = None
    for i, size in enumerate(sizes):
        event = PropertyEvent(f"e{i}", "created" if i == 0 else "updated", T0 + i, prop,
                              {"title": "x" * size, "city": "c", "price": 1})
        state = apply(state, event)
        table.record(state, StoredEvent(state.version, event))
    status, body = events_answer(prop, table, after, limit, max_bytes)
    page = body["events"]
    assert status == 200 and len(page) <= limit
    assert [e["version"] for e in page] == list(range(after + 1, after + 1 + len(page)))
    if len(page) > 1:
        assert sum(len(orjson.dumps(e)) + 1 for e in page) <= max_bytes
    if after < len(sizes):
        assert page  # never an empty page before the end: the cursor always moves on
    assert (body["nextAfterVersion"] is None) == (after + len(page) >= len(sizes))
    pages = all_pages(table, prop, limit, max_bytes)
    assert [e["version"] for p in pages for e in p] == list(range(1, len(sizes) + 1))


async def test_a_page_of_wide_events_relayed_by_a_non_owner_is_200_not_503(tmp_path):
    """The owner's page, relayed by another worker: under the relay cap, so the non-owner
    answers it (it answered 503 for good when one page could hold 4.9 MB)."""
    from aiohttp.test_utils import TestClient, TestServer
    from yarl import URL

    from app.engine.store import PartitionStore, rocksdb_options
    from app.main import create_app
    from app.web.routing import partition_of

    from ..conftest import SMALL

    owner_settings = Settings(app_id="pages-owner", worker_data_dir=tmp_path / "o", topic_partitions=4)
    owner = create_app(owner_settings)
    owner.web.init_server()
    partition = partition_of("wide", 4)
    store = PartitionStore(tmp_path / "props", rocksdb_options(SMALL, SMALL))
    processor = PropertiesProcessor(partition, store, Outbox(),
                                    PropertiesConfig.from_settings(owner_settings))
    for i in range(600):
        doc = {"eventId": f"e{i}", "eventType": "property." + ("created" if i == 0 else "updated"),
               "timestamp": iso_ms(T0 + i), "propertyId": "wide",
               "data": {"title": WIDE, "city": WIDE, "price": i}}
        processor.process(i, b"wide", orjson.dumps(doc), NOW)
    commit(store, None)
    owned = owner.runtime.properties.owned
    owned._open[partition] = processor
    owner_client = TestClient(TestServer(owner.web.web_app))
    await owner_client.start_server()

    relay = create_app(Settings(app_id="pages-relay", worker_data_dir=tmp_path / "r", topic_partitions=4))
    relay.web.init_server()
    topic = relay.runtime.settings.property_events_topic
    owner_url = str(owner_client.make_url("/"))
    relay.assignor.external_topics_metadata = lambda: {owner_url: {topic: set(range(4))}}
    relay_client = TestClient(TestServer(relay.web.web_app))
    await relay_client.start_server()
    try:
        got, after = [], 0
        while after is not None:
            response = await relay_client.get(
                URL(f"/api/properties/wide/events?limit=1000&afterVersion={after}", encoded=True))
            body = await response.read()
            assert response.status == 200, body[:200]
            assert len(body) < routing.MAX_ANSWER_BYTES
            page = orjson.loads(body)
            got += [e["version"] for e in page["events"]]
            after = page["nextAfterVersion"]
        assert got == list(range(1, 601))
    finally:
        await relay_client.close()
        await owner_client.close()
        owned._open.clear()
        store.close()
