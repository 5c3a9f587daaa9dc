"""The fast murmur2 partitioner puts every key where Kafka's default partitioner would."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as reference_murmur2
from hypothesis import given
from hypothesis import strategies as st

from services.common.partitioning import murmur2, partition_for_key


@given(st.binary(max_size=300))
def test_murmur2_matches_the_kafka_client_hash(key: bytes) -> None:
    """For any key, the hash equals aiokafka's port of the Java client's murmur2."""
    assert murmur2(key) == reference_murmur2(key)


@given(st.binary(min_size=1, max_size=100), st.integers(min_value=1, max_value=64))
def test_partition_matches_the_default_partitioner(key: bytes, partitions: int) -> None:
    """The chosen partition is the one aiokafka's default partitioner chooses."""
    every = list(range(partitions))
    assert partition_for_key(key, partitions) == DefaultPartitioner()(key, every, every)


def test_known_key_lands_on_a_fixed_partition() -> None:
    """A concrete key keeps its hash and partitions across releases (a change would split keys)."""
    key = b"trade.shipment/S00000001"
    assert murmur2(key) == reference_murmur2(key) == 3005924388
    assert [partition_for_key(key, n) for n in (1, 3, 12)] == [0, 1, 4]
