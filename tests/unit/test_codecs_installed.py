"""Every codec a Kafka client may compress a batch with is readable by this installation:
without cramjam (aiokafka's snappy, lz4 and zstd extras) one such batch stops a stage and
keeps a starting worker from becoming ready. Round trips through aiokafka's own codecs."""

from __future__ import annotations

import pytest
from aiokafka import codec


@pytest.mark.parametrize("name", ["gzip", "snappy", "lz4", "zstd"])
def test_each_codec_is_installed_and_round_trips(name):
    assert getattr(codec, f"has_{name}")(), f"{name} is not installed: see pyproject.toml"
    data = b'{"eventId":"e-1","propertyId":"prop-1"}' * 100
    encode, decode = getattr(codec, f"{name}_encode"), getattr(codec, f"{name}_decode")
    assert decode(encode(data)) == data
