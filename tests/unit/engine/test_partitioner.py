"""The partitioner gives the Java client's default partition of a key, remembered or not."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.engine import partitioner
from app.engine.partitioner import key_partition, text_partition


@pytest.mark.parametrize(
    ("key", "java_murmur2"),
    [  # the Java client's test vectors (org.apache.kafka.common.utils.UtilsTest)
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ],
)
def test_key_partition_matches_the_java_default_partitioner(key, java_murmur2):
    for partitions in (1, 3, 12, 100):
        assert key_partition(key, partitions) == (java_murmur2 & 0x7FFFFFFF) % partitions


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.text(min_size=1, max_size=20).filter(
    lambda u: not any(0xD800 <= ord(c) <= 0xDFFF for c in u)), max_size=30))
def test_text_partition_is_the_partition_of_its_utf8_cached_or_not(monkeypatch, texts):
    monkeypatch.setattr(partitioner, "CACHED_KEYS", 4)  # emptied every 4 texts
    for partitions in (1, 12, 7):
        for text in texts + texts:  # the second time from the cache
            assert text_partition(text, partitions) == key_partition(text.encode(), partitions)
            assert len(partitioner._CACHE[partitions]) <= 4  # noqa: SLF001
