"""Real-time detection: reader -> batcher -> scorer -> alert writer.

:func:`iter_blocks` reads CSV (any layout iotids knows) or JSON lines from a file or stdin, optionally tailing it;
:func:`blocks_from_flows` and :func:`blocks_from_tables` wrap flow dicts or Arrow tables with canonical names (the
flows :mod:`iotids.flows` builds from packets); :func:`run_stream`
scores them in micro-batches and writes EVE alert lines through an :class:`AlertWriter`.
"""

from iotids.stream.alerts import AlertWriter, RejectWriter
from iotids.stream.batcher import iter_batches
from iotids.stream.community_id import community_id
from iotids.stream.pipeline import StreamStats, run_stream
from iotids.stream.readers import blocks_from_flows, blocks_from_tables, iter_blocks
from iotids.stream.records import BadRecord, FlowBlock

__all__ = [
    "AlertWriter",
    "BadRecord",
    "FlowBlock",
    "RejectWriter",
    "StreamStats",
    "blocks_from_flows",
    "blocks_from_tables",
    "community_id",
    "iter_batches",
    "iter_blocks",
    "run_stream",
]
