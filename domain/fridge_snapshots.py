"""How a fridge's snapshots of earlier class versions load: each upcast brings the state
one version on (`Fridge.class_version` says which is current). Kept apart from the fridge's
rules because they change only when the fridge's state changes shape."""

from __future__ import annotations

from typing import Any

from domain.reservations import ReservationBook
from domain.shelf import Shelf
from domain.values import PAYMENT_WINDOW


def upcast_v1_v2(state: dict[str, Any]) -> None:
    """A snapshot taken before orders were born in the fridge: what it did not keep is
    unknown (no terms, no lines of settled orders: a repeat of one is taken as a repeat)."""
    for reservation in state["reservations"].values():
        reservation.setdefault("reserved_at", reservation["expires_at"] - PAYMENT_WINDOW)
        reservation.setdefault("order", None)
    state.setdefault("reports", {})
    for closed in state["closed_orders"].values():
        closed.setdefault("lines", {})
        closed.setdefault("reserved_at", closed["at"])
        closed.setdefault("expires_at", closed["at"])
        closed.setdefault("order", None)


def upcast_v2_v3(state: dict[str, Any]) -> None:
    """A snapshot taken while batches and reservations were the fridge's own dicts."""
    state["_shelf"] = Shelf(state.pop("batches"))
    state["_book"] = ReservationBook(
        open=state.pop("reservations"),
        closed=state.pop("closed_orders"),
        holds=state.pop("holds"),
    )
