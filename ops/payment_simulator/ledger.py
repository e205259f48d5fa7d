"""The simulated processor's ledger: what it holds, took, voided and gave back, per order.

A SQLite file, so it survives the simulator's restart. Every money movement is a row keyed
by the caller's idempotency key: asking twice with one key moves the money once, and the
`moves` table is the witness a test or an operator reads (two captures of one order would be
two rows).
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import asdict, dataclass
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
        self._conn.executescript(SCHEMA)
        self._lock = threading.Lock()

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
    ) -> tuple[Payment, bool]:
        """The order's payment, made now in `state` unless it exists; (payment, made now)."""
        with self._lock:
            made = self._conn.execute(
                "INSERT INTO payments VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (order_id, f"sim-{order_id[:18]}", amount, currency, fridge_id, state, reason),
            ).rowcount
            if made and state == "authorised":
                self._move(idempotency_key, order_id, "authorise", amount)
        return self.payment(order_id), bool(made)

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
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    self._move(idempotency_key, order_id, kind, amount)
                    self._conn.execute(
                        "UPDATE payments SET state = ? WHERE order_id = ?",
                        (STATE_AFTER[kind], order_id),
                    )
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
        return self.payment(order_id)

    def payment(self, order_id: str) -> Payment:
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

    def delivered(self, order_id: str, webhook_id: str, status: int) -> None:
        """A webhook about the order was delivered (or tried) and answered `status`."""
        with self._lock:
            self._conn.execute(
                "INSERT INTO webhooks VALUES (?, ?, ?, ?)",
                (order_id, webhook_id, status, datetime.now(UTC).isoformat()),
            )

    def payments(self) -> list[Payment]:
        ids = [r[0] for r in self._conn.execute("SELECT order_id FROM payments ORDER BY rowid")]
        return [self.payment(order_id) for order_id in ids]

    def _move(self, idempotency_key: str, order_id: str, kind: str, amount: str) -> None:
        self._conn.execute(
            "INSERT INTO moves VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (idempotency_key, order_id, kind, amount, datetime.now(UTC).isoformat()),
        )
