"""Dead letters: list them, replay them at most once, count those waiting.

A dead letter is a record of ``<topic>.dlq`` written by the delivery wrapper (``delivery.py``):
the original value and key, the original headers, and ``dlq_*`` headers saying where it came
from and why it failed.

Replaying re-publishes the original message (value, key, headers minus ``dlq_*``, to its
original partition) with a ``cardflow_replay_of`` header naming the dead letter. Which dead
letters were replayed is kept in the compacted topic ``cardflow.dlq.replayed.v1``: one record
per dead letter, keyed by its ref ``<dlq topic>:<partition>:<offset>``. The copies and their
ledger records are written in one Kafka transaction, so both are there or neither: a crash
mid-replay replays nothing and the next run does it all. The transactional id is fixed (per
topic prefix) and the ledger is read only after the producer's ``init_transactions``, which
fences a replay running elsewhere and aborts its open transaction: two replays at once cannot
both publish one dead letter. A copy that fails again becomes a new dead letter (new ref).

Replay goes to the topic, so every consumer group of it sees the message again; those that
handled the event already skip it (the inbox dedupes by event id).

Three modules: ``records`` (pure: parse a record, the ledger, select, a replay's headers and
plan), ``kafka`` (the I/O around them: ``read_dead_letters``, ``replay``, ``export_waiting``)
and ``command`` (``cardflow dlq list|replay``). The package imports none of them: the
command line loads Kafka's client only when a dlq command runs.
"""
