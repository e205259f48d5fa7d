"""The simulated processor's ledger: what it holds, took, voided and gave back, per order.

A SQLite file, so it survives the simulator's restart. Every money movement is a row keyed
by the caller's idempotency key: asking twice with one key moves the money once, and the
`moves` table is the witness a test or an operator reads (two captures of one order would be
two rows). The webhooks an authorisation owes are written in the same transaction as the
authorisation (`outbox`), and leave it only once delivered (or given up on), so a webhook the
simulator was killed before delivering is delivered after its restart.

WAL with synchronous=NORMAL: a commit survives the process being killed (not the machine
losing power), which is all a simulator needs, at a fraction of a full fsync per commit.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS payments (
    order_id TEXT PRIMARY KEY, payment_ref TEXT NOT NULL, amount TEXT NOT NULL,
    currency TEXT NOT NULL, fridge_id TEXT NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS moves (
    idempotency_key TEXT PRIMARY KEY, order_id TEXT NOT NULL, kind TEXT NOT NULL,
    amount TEXT NOT NULL, at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS calls (idempotency_key TEXT PRIMARY KEY, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS webhooks (
    order_id TEXT NOT NULL, webhook_id TEXT NOT NULL, status INTEGER NOT NULL, at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    order_id TEXT NOT NULL, webhook_id TEXT NOT NULL, due TEXT NOT NULL, sent_at TEXT NOT NULL,
    body BLOB NOT NULL
);
"""

# state -> the moves that may follow it
NEXT = {
    "authorised": {"capture", "void"},
    "captured": {"refund"},
    "declined": set(),
    "pending": set(),
    "voided": set(),
    "refunded": set(),
}
STATE_AFTER = {"capture": "captured", "void": "voided", "refund": "refunded"}


def payment_ref_of(order_id: str) -> str:
    """The processor's reference for an order's payment (what Farmacy keeps of it)."""
    return f"sim-{order_id[:18]}"


@dataclass(frozen=True)
class Webhook:
    """A webhook owed to Farmacy, due at `due`; `outbox_id` names it in the outbox (0 before
    it is written there)."""

    order_id: str
    webhook_id: str
    due: datetime
    sent_at: datetime
    body: bytes
    outbox_id: int = 0


class Refused(Exception):
    """A move the payment's state does not allow (voiding what was captured, ...)."""


class Unknown(Exception):
    """No payment for this order."""


@dataclass(frozen=True)
class Payment:
    order_id: str
    payment_ref: str
    amount: str
    currency: str
    fridge_id: str
    state: str  # pending, authorised, declined, captured, voided, refunded
    reason: str
    moves: list[dict[str, Any]]
    webhooks: list[dict[str, Any]]  # every delivery attempt: id and the status answered

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class Ledger:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)
        self._lock = threading.RLock()

    def close(self) -> None:
        self._conn.close()

    def called(self, idempotency_key: str) -> int:
        """Count one more call with this key; how many there have been."""
        with self._lock:
            self._conn.execute(
                "INSERT INTO calls VALUES (?, 1) ON CONFLICT(idempotency_key) "
                "DO UPDATE SET count = count + 1",
                (idempotency_key,),
            )
            row = self._conn.execute(
                "SELECT count FROM calls WHERE idempotency_key = ?", (idempotency_key,)
            ).fetchone()
            return int(row[0])

    def open(
        self,
        idempotency_key: str,
        order_id: str,
        amount: str,
        currency: str,
        fridge_id: str,
        state: str,
        reason: str = "",
        webhooks: list[Webhook] | None = None,
    ) -> tuple[Payment, list[Webhook]]:
        """The order's payment, made now in `state` unless it exists, with the `webhooks` it
        owes in the outbox, in one transaction: (payment, the webhooks queued now, none if
        the payment was there already)."""
        with self._lock, self._transaction():
            made = self._conn.execute(
                "INSERT INTO payments VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (order_id, payment_ref_of(order_id), amount, currency, fridge_id, state, reason),
            ).rowcount
            if made and state == "authorised":
                self._move(idempotency_key, order_id, "authorise", amount)
            queued = [self._queue(webhook) for webhook in webhooks or []] if made else []
            return self.payment(order_id), queued

    def undelivered(self) -> list[Webhook]:
        """The webhooks owed and not yet delivered, in the order they were queued."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT rowid, order_id, webhook_id, due, sent_at, body FROM outbox ORDER BY rowid"
            ).fetchall()
        return [
            Webhook(
                order, webhook, datetime.fromisoformat(due), datetime.fromisoformat(at), body, n
            )
            for n, order, webhook, due, at, body in rows
        ]

    def move(self, idempotency_key: str, order_id: str, kind: str, amount: str) -> Payment:
        """Capture, void or refund, once per idempotency key; Refused if the state forbids it."""
        with self._lock:
            done = self._conn.execute(
                "SELECT kind FROM moves WHERE idempotency_key = ?", (idempotency_key,)
            ).fetchone()
            if done is None:
                row = self._conn.execute(
                    "SELECT state FROM payments WHERE order_id = ?", (order_id,)
                ).fetchone()
                if row is None:
                    raise Unknown(order_id)
                if kind not in NEXT[row[0]]:
                    raise Refused(f"cannot {kind} a payment that is {row[0]}")
                with self._transaction():
                    self._move(idempotency_key, order_id, kind, amount)
                    self._conn.execute(
                        "UPDATE payments SET state = ? WHERE order_id = ?",
                        (STATE_AFTER[kind], order_id),
                    )
            return self.payment(order_id)

    def payment(self, order_id: str) -> Payment:
        with self._lock:
            return self._payment(order_id)

    def _payment(self, order_id: str) -> Payment:
        row = self._conn.execute(
            "SELECT order_id, payment_ref, amount, currency, fridge_id, state, reason "
            "FROM payments WHERE order_id = ?",
            (order_id,),
        ).fetchone()
        if row is None:
            raise Unknown(order_id)
        moves = [
            {"key": k, "kind": kind, "amount": amount, "at": at}
            for k, kind, amount, at in self._conn.execute(
                "SELECT idempotency_key, kind, amount, at FROM moves WHERE order_id = ? "
                "ORDER BY rowid",
                (order_id,),
            )
        ]
        webhooks = [
            {"id": webhook_id, "status": status}
            for webhook_id, status in self._conn.execute(
                "SELECT webhook_id, status FROM webhooks WHERE order_id = ? ORDER BY rowid",
                (order_id,),
            )
        ]
        order, ref, amount, currency, fridge_id, state, reason = row
        return Payment(order, ref, amount, currency, fridge_id, state, reason, moves, webhooks)

    def delivered(self, webhook: Webhook, status: int, final: bool) -> None:
        """A webhook was delivered (or tried) and answered `status`; `final`: it leaves the
        outbox (answered, or given up on)."""
        with self._lock, self._transaction():
            self._conn.execute(
                "INSERT INTO webhooks VALUES (?, ?, ?, ?)",
                (webhook.order_id, webhook.webhook_id, status, datetime.now(UTC).isoformat()),
            )
            if final:
                self._conn.execute("DELETE FROM outbox WHERE rowid = ?", (webhook.outbox_id,))

    def payments(self) -> list[Payment]:
        with self._lock:
            ids = [r[0] for r in self._conn.execute("SELECT order_id FROM payments ORDER BY rowid")]
            return [self.payment(order_id) for order_id in ids]

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _queue(self, webhook: Webhook) -> Webhook:
        written = self._conn.execute(
            "INSERT INTO outbox VALUES (?, ?, ?, ?, ?)",
            (
                webhook.order_id,
                webhook.webhook_id,
                webhook.due.isoformat(),
                webhook.sent_at.isoformat(),
                webhook.body,
            ),
        )
        return replace(webhook, outbox_id=int(written.lastrowid or 0))

    def _move(self, idempotency_key: str, order_id: str, kind: str, amount: str) -> None:
        self._conn.execute(
            "INSERT INTO moves VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (idempotency_key, order_id, kind, amount, datetime.now(UTC).isoformat()),
        )
