"""What `farmacy run` shows a newcomer: where the API is, a token per role, a curl for each.

The tokens are signed with the configured FARMACY_SECRET and last a day; the ids default to
the demo data (`ops.demo`), so every curl works against a freshly seeded store.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from datetime import timedelta

from interfaces.http.auth import Role, issue_token
from ops.settings import Settings


def demo_lines(
    base_url: str,
    settings: Settings,
    *,
    city_id: str = "berlin",
    venue_id: str = "kreuzberg-gym",
    fridge_id: str = "kreuzberg-gym-1",
    meal_id: str = "lentil-dal",
    customer_id: str = "demo-customer",
) -> list[str]:
    """The lines to print: the URL, the docs, and per kind of user a token and one curl."""
    base = base_url.rstrip("/")
    subjects = {
        Role.CUSTOMER: customer_id,
        Role.KITCHEN: "demo-kitchen",
        Role.FRIDGE: fridge_id,
        Role.OPERATOR: "demo-operator",
    }
    tokens = {
        role: issue_token(settings.secret, role, subject, timedelta(days=1))
        for role, subject in subjects.items()
    }
    order = f'{{"fridge_id": "{fridge_id}", "lines": [{{"meal_id": "{meal_id}", "quantity": 1}}]}}'

    def curl(role: Role, method: str, path: str, body: str | None = None, *extra: str) -> str:
        words = ["curl", "-s"]
        if method != "GET":
            words += ["-X", method]
        words += ["-H", f"Authorization: Bearer {tokens[role]}"]
        for header in extra:
            words += ["-H", header]
        if body is not None:
            words += ["-H", "Content-Type: application/json", "-d", body]
        return " ".join([*(shlex.quote(w) for w in words), shlex.quote(base + path)])

    lines = [
        f"Farmacy API: {base}  (docs: {base}/schema, health: {base}/readyz, {base}/metrics)",
        "",
        "Tokens (valid for a day; `farmacy token ROLE --subject ID` prints more):",
    ]
    lines += [f"  {role.value:<9} ({subjects[role]}): {tokens[role]}" for role in subjects]
    lines += [
        "",
        "A customer browses a venue's menu, orders, and reads the menu at the order's position:",
        "  " + curl(Role.CUSTOMER, "GET", f"/venues/{venue_id}/menu"),
        "  " + curl(Role.CUSTOMER, "POST", "/orders", order, "Idempotency-Key: demo-1"),
        "  " + curl(Role.CUSTOMER, "GET", f"/venues/{venue_id}/menu?min_position=POSITION"),
        "  " + curl(Role.CUSTOMER, "GET", f"/cities/{city_id}/menu"),
        "The kitchen reads what to deliver tomorrow:",
        "  " + curl(Role.KITCHEN, "GET", "/kitchen/refill-plan"),
        "A fridge reads its own stock:",
        "  " + curl(Role.FRIDGE, "GET", f"/fridges/{fridge_id}/stock"),
        "An operator lists a city's venues:",
        "  " + curl(Role.OPERATOR, "GET", f"/cities/{city_id}/venues"),
    ]
    return lines


def print_demo(
    base_url: str, settings: Settings, *, echo: Callable[[str], object] = print, **ids: str
) -> None:
    """Print the URL, a token for each role and one example curl per kind of user."""
    for line in demo_lines(base_url, settings, **ids):
        echo(line)
