"""Queue load tests: real traffic through Azure Storage queues, recorded for message-timing.

``run_producer`` sends, ``run_consumer`` receives and records, and
``run_load_test`` does both in one process.  The records land in
``OUTPUT/records`` in the shape ``sdpipe run message-timing`` reads; the
producer log, with every message sent or not, in ``OUTPUT/producer``.

NOTE: Storage queues deliver at least once and in no promised order.  The
consumer deletes a message only after its record is written, so a crash
can cause duplicate records but never a lost one.
"""

from sdpipe.loadtest.connection import QueueSettings
from sdpipe.loadtest.consumer import ConsumerConfig, ConsumerResult, run_consumer
from sdpipe.loadtest.producer import ProducerConfig, ProducerResult, run_producer
from sdpipe.loadtest.run import run_load_test

__all__ = [
    "ConsumerConfig",
    "ConsumerResult",
    "ProducerConfig",
    "ProducerResult",
    "QueueSettings",
    "run_consumer",
    "run_load_test",
    "run_producer",
]
