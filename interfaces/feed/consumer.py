"""A reference consumer of the feed on JetStream (`farmacy feed consume --partition K/N`).

Copy it: it shows how to read one partition in order, exactly once into a sink that remembers
what it wrote, with one consumer active per partition and any number waiting to take over.

- **One active per partition, a lease.** nats-py (2.16, the newest release) has no client for
  JetStream's pinned-client priority groups (server 2.11+, ADR-42; nats.py PR #1015 adds it
  after that release), so the consumer takes a lease instead: a key per partition in the
  key-value bucket `farmacy_feed_leases`, whose values live `--lease-seconds`. `create` takes
  it only if nobody holds it; the holder renews it with `update(last=revision)`, a
  compare-and-set, and stops reading the moment a renewal fails. A holder that dies stops
  renewing; its key expires and a standby's `create` succeeds.
- **In order, from where the last holder stopped.** The holder reads with an ordered consumer
  (JetStream redelivers nothing out of order; nats-py recreates it at the right sequence after a
  gap) starting after the stream sequence kept in `farmacy_feed_progress`, which it advances,
  compare-and-set again, after each event its sink has taken.
- **Exactly once at the sink.** A holder killed between its sink taking an event and the
  progress moving hands that event to the next holder again; the sink skips positions it has
  (`JsonLines` reads its file's last position). Delivery is at least once; the sink makes it
  exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

import nats.errors
import structlog
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from interfaces.feed.jetstream import (
    LEASES,
    PROGRESS,
    STREAM,
    SUBJECT_PREFIX,
    Layout,
    bucket,
    connect,
)
from projections.integration import PARTITIONS

log = structlog.get_logger(__name__)

LEASE_SECONDS = 3.0
TROUBLE = (nats.errors.Error, asyncio.TimeoutError, OSError)


@dataclass(frozen=True)
class Partition:
    """Partition `index` of `count`: the feed's subject partitions p with p % count == index
    (count must divide the feed's PARTITIONS, so every fridge stays in one)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Partition:
        index, _, count = text.partition("/")
        if not (index.isdigit() and count.isdigit()):
            raise ValueError(f"partition {text!r}: need K/N, e.g. 0/{PARTITIONS}")
        partition = cls(int(index), int(count))
        if not 0 <= partition.index < partition.count or PARTITIONS % partition.count:
            raise ValueError(
                f"partition {text!r}: need K/N with 0 <= K < N and N dividing {PARTITIONS}"
            )
        return partition

    @property
    def key(self) -> str:
        return f"partition-{self.index}-of-{self.count}"

    def subjects(self) -> list[str]:
        return [
            f"{SUBJECT_PREFIX}.*.{p}" for p in range(PARTITIONS) if p % self.count == self.index
        ]


class Sink(Protocol):
    """Where a consumer hands events: it takes each at most once, by position."""

    def __call__(self, event: dict[str, Any]) -> None: ...

    def resume(self) -> None:
        """Called on taking a partition over: learn what the sink already holds."""


class JsonLines:
    """A sink: each event a JSON line appended to a file (flushed and synced), skipping any
    at or below the last position the file holds, so a handover writes nothing twice."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.last = 0
        self._out: TextIO | None = None
        self.resume()

    def resume(self) -> None:
        """Learn the last position the file holds (another consumer may have written it)."""
        if self.path is not None and self.path.exists():
            for line in self.path.read_text().splitlines():
                if line.strip():
                    self.last = max(self.last, int(json.loads(line)["position"]))

    def __call__(self, event: dict[str, Any]) -> None:
        if event["position"] <= self.last:
            return
        line = json.dumps(event, sort_keys=True)
        if self.path is None:
            print(line, flush=True)  # noqa: T201 - stdout is this sink's output
        else:
            if self._out is None:
                self._out = self.path.open("a")
            self._out.write(line + "\n")
            self._out.flush()
            os.fsync(self._out.fileno())
        self.last = event["position"]


async def _take_lease(leases: KeyValue, key: str, me: bytes, stop: threading.Event) -> int | None:
    """Wait until this consumer holds the lease (its revision), or None once `stop` is set."""
    standing_by = False
    while not stop.is_set():
        try:
            return await leases.create(key, me)
        except KeyWrongLastSequenceError:
            if not standing_by:
                log.info("feed consumer stands by", lease=key)
                standing_by = True
        except TROUBLE as error:
            log.warning("feed consumer cannot reach the lease", error=str(error))
        await asyncio.sleep(0.2)
    return None


async def _progress(progress: KeyValue, key: str) -> tuple[int, int]:
    """The stream sequence the last holder got to, and the progress key's revision (0s)."""
    try:
        entry = await progress.get(key)
    except nats.js.errors.KeyNotFoundError:
        return 0, 0
    return int(json.loads(entry.value or b"{}").get("sequence", 0)), int(entry.revision or 0)


async def consume(
    url: str,
    partition: Partition,
    handle: Sink,
    stop: threading.Event,
    lease_seconds: float = LEASE_SECONDS,
    layout: Layout | None = None,
) -> None:
    """Stand by for `partition`'s lease; while holding it, hand `handle` each event in order."""
    layout = layout or Layout()
    me = f"{os.getpid()}-{uuid.uuid4().hex[:8]}".encode()
    nc = await connect(url, f"farmacy-feed-{partition.key}")
    try:
        js = nc.jetstream(timeout=5)
        while not stop.is_set():
            try:
                leases = await bucket(js, LEASES, layout, ttl=lease_seconds)
                progress = await bucket(js, PROGRESS, layout)
            except TROUBLE as error:  # no JetStream yet (a cluster electing its leader)
                log.warning("feed consumer waits for JetStream", error=str(error))
                await asyncio.sleep(0.5)
                continue
            revision = await _take_lease(leases, partition.key, me, stop)
            if revision is None:
                return
            log.info("feed consumer active", lease=partition.key)
            handle.resume()
            try:
                await _read_while_leased(
                    js, leases, progress, partition, handle, stop, revision, me, lease_seconds
                )
            except (KeyWrongLastSequenceError, *TROUBLE) as error:
                log.warning("feed consumer lost its lease", error=str(error) or repr(error))
    finally:
        await nc.close()


async def _read_while_leased(
    js: Any,
    leases: KeyValue,
    progress: KeyValue,
    partition: Partition,
    handle: Sink,
    stop: threading.Event,
    revision: int,
    me: bytes,
    lease_seconds: float,
) -> None:
    loop = asyncio.get_running_loop()
    renew_every = lease_seconds / 3
    sequence, progress_revision = await _progress(progress, partition.key)
    config = ConsumerConfig(filter_subjects=partition.subjects())
    policy = DeliverPolicy.ALL
    if sequence:
        config.opt_start_seq = sequence + 1
        policy = DeliverPolicy.BY_START_SEQUENCE
    sub = await js.subscribe(
        partition.subjects()[0],
        stream=STREAM,
        ordered_consumer=True,
        deliver_policy=policy,
        config=config,
        idle_heartbeat=max(0.5, renew_every),
    )
    try:
        renewed = loop.time()
        while not stop.is_set():
            if loop.time() - renewed >= renew_every:
                revision = await leases.update(partition.key, me, last=revision)
                renewed = loop.time()
            try:
                msg = await sub.next_msg(timeout=renew_every)
            except nats.errors.TimeoutError:
                continue
            event = json.loads(msg.data)
            handle(event)
            sequence = msg.metadata.sequence.stream
            mark = json.dumps({"sequence": sequence, "position": event["position"]}).encode()
            progress_revision = await (
                progress.update(partition.key, mark, last=progress_revision)
                if progress_revision
                else progress.create(partition.key, mark)
            )
    finally:
        await sub.unsubscribe()


def run_consumer(
    url: str,
    partition: Partition,
    handle: Sink,
    stop: threading.Event,
    lease_seconds: float = LEASE_SECONDS,
    replicas: int = 1,
) -> None:
    """The consumer in this thread, on an event loop of its own, until `stop`; the buckets
    it creates have `replicas` replicas (3 on a cluster)."""
    asyncio.run(consume(url, partition, handle, stop, lease_seconds, Layout(replicas)))
