"""Configuration comes from the environment; `farmacy --help` lists every setting."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

SETTINGS_HELP = {
    "FARMACY_STORE": "sqlite (default, embedded), postgres, or kurrentdb",
    "FARMACY_DATA_DIR": "where SQLite files live (default ./var)",
    "FARMACY_POSTGRES_DSN": "PostgreSQL for events (postgres) and read models (postgres, "
    "kurrentdb), e.g. postgresql://postgres@127.0.0.1:5432/farmacy",
    "FARMACY_POSTGRES_SCHEMA": "PostgreSQL schema to use (default public)",
    "KURRENTDB_URI": "KurrentDB/EventStoreDB, e.g. kurrentdb://127.0.0.1:2113?tls=false",
    "FARMACY_SECRET": "signs bearer tokens: at least 32 bytes, "
    "required with a server store or an API beyond loopback (the embedded demo makes its own, "
    "in FARMACY_DATA_DIR/secret)",
    "FARMACY_PORT": "the main job's API port (farmacy run; default 8000)",
    "FARMACY_LOG_FORMAT": "console or json (default: console on a terminal, else json)",
    "FARMACY_LOG_LEVEL": "DEBUG, INFO, WARNING or ERROR (default INFO); DEBUG adds a line per "
    "event a projection worker applies, with its request and correlation ids",
    "FARMACY_COMMAND_CONCURRENCY": "commands one API process runs at once (default by store: "
    "sqlite 2, postgres 4, kurrentdb 16)",
    "FARMACY_COMMAND_QUEUE": "commands that may wait for a turn before the next gets 503 "
    "(default 256)",
    "FARMACY_FRIDGE_CLOUD_URL": "the fridge vendor's API that `farmacy fridges poll` reads "
    "counts from (unset: the poller only marks silent fridges stale)",
    "FARMACY_STALE_AFTER": "seconds without a count report before a fridge is marked stale "
    "(default 1800)",
    "FARMACY_POLL_EVERY": "seconds between the poller's rounds (default 60)",
    "FARMACY_POLL_RATE": "most requests a second the poller sends the vendor (default 5)",
    "FARMACY_PAYMENT_WEBHOOK_SECRET": "verifies the payment processor's webhooks (Standard "
    "Webhooks, whsec_ and base64 of at least 24 bytes); required with a server store or an API "
    "beyond loopback (the embedded demo makes its own, in FARMACY_DATA_DIR/payment-webhook-secret)",
    "FARMACY_PAYMENT_WEBHOOK_TOLERANCE": "how far a payment webhook's timestamp may be from now, "
    "either way, e.g. 5m (default 5m, as Standard Webhooks recommends)",
    "FARMACY_PAYMENT_WINDOW": "how long an order waits for its payment, e.g. 10m (default 10m)",
    "FARMACY_PICKUP_WINDOW": "how long a ready order waits to be collected, e.g. 2h (default 2h; "
    "never past the end of the local day its meals' best-before ends)",
    "FARMACY_NO_SHOW": "release (void the held money) or charge (capture it) when an order is not "
    "collected (default release)",
    "FARMACY_PAYMENTS_URL": "the payment processor's HTTP API; required with a server store "
    "(sqlite default: the simulated processor, http://127.0.0.1:8100)",
    "FARMACY_NATS_URL": "NATS JetStream for the feed (farmacy relay, farmacy feed consume), e.g. "
    "nats://127.0.0.1:4222; unset: the feed is HTTP only",
    "FARMACY_READ_LOG_PER_SECOND": "successful reads one API process logs a line for, per "
    "second, at most; the rest are counted on the next line (default 100; errors and writes "
    "are always logged)",
    "FARMACY_SERVER": "the ASGI server farmacy api runs: uvicorn (default) or granian",
    "FARMACY_METRICS_PORT": "the TCP port a long-running process other than the API (worker, "
    "fulfil, relay, expiry, fridges poll, snapshots, payments simulate) serves Prometheus "
    "metrics on, at /metrics (0 or unset: none; the API's are on its own port; farmacy run "
    "gives its children ports of their own with --metrics-port-base)",
    "FARMACY_METRICS_HOST": "the interface those metrics are served on (default: every "
    "interface, for a deployment's Prometheus; farmacy run uses its API's --host)",
}

STORES = ("sqlite", "postgres", "kurrentdb")

# How many commands one API process runs against each store at once (interfaces/http/
# commands.py). SQLite takes one write lock per append, so past a few callers more threads
# only hold that lock longer; PostgreSQL appends share no lock (ops/postgres_events.py) but a
# command is mostly Python, so 4 (measured in docs/benchmarks.md before the lock went; not
# measured again since). KurrentDB takes appends to different streams in parallel over gRPC:
# 16 is a starting point, not a measurement (no server here).
COMMAND_CONCURRENCY = {"sqlite": 2, "postgres": 4, "kurrentdb": 16}


class SettingsError(Exception):
    """A setting is missing or wrong; the message names it."""


SECRET_BYTES = 32
"""The shortest FARMACY_SECRET a deployment may sign tokens with (HS256 wants 256 bits)."""
PUBLISHED_SECRETS = frozenset({"farmacy-local-development-secret", "changeme", "secret"})
"""Secrets anyone can read (the first was once this module's default): never accepted."""
DEMO_SECRET_FILE = "secret"  # noqa: S105 - a file name


def _random_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


WEBHOOK_SECRET_BYTES = 24
"""The shortest payment webhook key (Standard Webhooks asks for 24 to 64 random bytes)."""
WEBHOOK_SECRET_FILE = "payment-webhook-secret"  # noqa: S105 - a file name
NO_SHOW_POLICIES = ("release", "charge")


def _random_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def webhook_secret_weakness(secret: str) -> str | None:
    """Why `secret` must not verify payment webhooks, or None."""
    if not secret:
        return "is not set"
    if not secret.startswith("whsec_"):
        return "does not start with whsec_"
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        return "is not whsec_ and base64"
    if len(key) < WEBHOOK_SECRET_BYTES:
        return f"is a key of {len(key)} bytes, fewer than {WEBHOOK_SECRET_BYTES}"
    return None


DURATION = re.compile(r"(\d+)\s*(s|m|h)?\Z")
UNITS = {"s": 1, "m": 60, "h": 3600}


def _duration(env: Mapping[str, str], name: str, default: timedelta) -> timedelta:
    """A positive duration such as 90s, 10m or 2h (a bare number is seconds)."""
    text = env.get(name, "").strip().lower()
    if not text:
        return default
    found = DURATION.match(text)
    seconds = int(found[1]) * UNITS[found[2] or "s"] if found else 0
    if seconds <= 0 or seconds > 7 * 24 * 3600:
        raise SettingsError(f"{name}={text!r}: a duration such as 90s, 10m or 2h, up to 7 days")
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class Settings:
    store: str = "sqlite"
    data_dir: Path = Path("var")
    postgres_dsn: str | None = None
    postgres_schema: str = ""
    kurrentdb_uri: str | None = None
    # Settings made in code (tests) sign with a secret of their own; from the environment it is
    # FARMACY_SECRET, or with neither that nor a server store the demo's (see `for_signing`).
    secret: str = field(default_factory=_random_secret, repr=False)
    demo_secret: bool = False  # the secret is the embedded demo's, kept in the data dir
    command_concurrency: int | None = None  # None: COMMAND_CONCURRENCY[store]
    command_queue: int = 256
    fridge_cloud_url: str | None = None
    stale_after_seconds: int = 1800
    poll_every_seconds: int = 60
    poll_rate: int = 5
    payment_webhook_secret: str = field(default_factory=_random_webhook_secret, repr=False)
    payment_window: timedelta = timedelta(minutes=10)
    payment_webhook_tolerance: timedelta = timedelta(minutes=5)
    pickup_window: timedelta = timedelta(hours=2)
    no_show: str = "release"
    payments_url: str = "http://127.0.0.1:8100"
    nats_url: str | None = None  # FARMACY_NATS_URL: the feed's JetStream (docs/feed.md)

    @property
    def command_lane_size(self) -> int:
        return self.command_concurrency or COMMAND_CONCURRENCY[self.store]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        store = env.get("FARMACY_STORE", "sqlite").strip().lower()
        if store not in STORES:
            raise SettingsError(f"FARMACY_STORE={store!r}: choose one of {', '.join(STORES)}")
        settings = cls(
            store=store,
            data_dir=Path(env.get("FARMACY_DATA_DIR", "var")),
            postgres_dsn=env.get("FARMACY_POSTGRES_DSN") or None,
            postgres_schema=env.get("FARMACY_POSTGRES_SCHEMA", ""),
            kurrentdb_uri=env.get("KURRENTDB_URI") or None,
            secret=env.get("FARMACY_SECRET", ""),
            demo_secret=store == "sqlite" and not env.get("FARMACY_SECRET"),
            command_concurrency=_whole(env, "FARMACY_COMMAND_CONCURRENCY", minimum=1),
            nats_url=env.get("FARMACY_NATS_URL") or None,
        )
        queue = _whole(env, "FARMACY_COMMAND_QUEUE", minimum=0)
        if queue is not None:
            settings = replace(settings, command_queue=queue)
        settings = replace(
            settings,
            fridge_cloud_url=env.get("FARMACY_FRIDGE_CLOUD_URL") or None,
            stale_after_seconds=_whole(env, "FARMACY_STALE_AFTER", minimum=1) or 1800,
            poll_every_seconds=_whole(env, "FARMACY_POLL_EVERY", minimum=1) or 60,
            poll_rate=_whole(env, "FARMACY_POLL_RATE", minimum=1) or 5,
        )
        no_show = env.get("FARMACY_NO_SHOW", "release").strip().lower()
        if no_show not in NO_SHOW_POLICIES:
            raise SettingsError(f"FARMACY_NO_SHOW={no_show!r}: choose release or charge")
        webhook_secret = env.get("FARMACY_PAYMENT_WEBHOOK_SECRET", "")
        if not webhook_secret and store == "sqlite":  # the demo's, if it made one already
            webhook_secret = read_demo_secret(settings.data_dir, WEBHOOK_SECRET_FILE) or ""
        settings = replace(
            settings,
            payment_webhook_secret=webhook_secret,
            payment_window=_duration(env, "FARMACY_PAYMENT_WINDOW", timedelta(minutes=10)),
            payment_webhook_tolerance=_duration(
                env, "FARMACY_PAYMENT_WEBHOOK_TOLERANCE", timedelta(minutes=5)
            ),
            pickup_window=_duration(env, "FARMACY_PICKUP_WINDOW", timedelta(hours=2)),
            no_show=no_show,
            # outside the embedded demo a processor must be named: never a silent default
            payments_url=env.get("FARMACY_PAYMENTS_URL", "")
            or ("http://127.0.0.1:8100" if store == "sqlite" else ""),
        )
        if store == "postgres" and not settings.postgres_dsn:
            raise SettingsError("FARMACY_STORE=postgres needs FARMACY_POSTGRES_DSN")
        if store == "kurrentdb" and not settings.kurrentdb_uri:
            raise SettingsError("FARMACY_STORE=kurrentdb needs KURRENTDB_URI")
        if settings.demo_secret:  # read it if the demo made it already, never make it here
            settings = replace(settings, secret=read_demo_secret(settings.data_dir) or "")
        return settings

    def for_signing(self, host: str = "127.0.0.1") -> Settings:
        """These settings with a secret fit to sign tokens for an API listening on `host`, or
        SettingsError naming FARMACY_SECRET.

        With a server store, or an API reachable beyond loopback, FARMACY_SECRET must be set,
        at least SECRET_BYTES long, and not one anyone can read. Otherwise (the embedded demo)
        a missing FARMACY_SECRET is made once per data directory and kept there.
        """
        exposed = not is_loopback(host)
        if self.demo_secret and not exposed:
            return replace(self, secret=demo_secret(self.data_dir))
        if self.store != "sqlite" or exposed or not self.secret:
            where = f"FARMACY_STORE={self.store}" if self.store != "sqlite" else f"an API on {host}"
            weakness = secret_weakness("" if self.demo_secret else self.secret)
            if weakness:
                raise SettingsError(
                    f"FARMACY_SECRET {weakness}: with {where} it signs every token; set at "
                    f"least {SECRET_BYTES} random bytes (e.g. `openssl rand -hex {SECRET_BYTES}`)"
                )
        return self

    def for_payments(self, host: str = "127.0.0.1") -> Settings:
        """These settings with a payment webhook secret fit for an API (or the simulated
        processor) on `host`, or SettingsError naming FARMACY_PAYMENT_WEBHOOK_SECRET.

        As for FARMACY_SECRET: with a server store or beyond loopback it must be set and
        strong; the embedded demo makes one per data directory and keeps it there.
        """
        exposed = not is_loopback(host)
        weakness = webhook_secret_weakness(self.payment_webhook_secret)
        if weakness is None:
            return self
        if self.store == "sqlite" and not exposed and not self.payment_webhook_secret:
            made = demo_secret(self.data_dir, WEBHOOK_SECRET_FILE, _random_webhook_secret)
            return replace(self, payment_webhook_secret=made)
        raise SettingsError(
            f"FARMACY_PAYMENT_WEBHOOK_SECRET {weakness}: it proves a webhook came from the "
            f"payment processor; set whsec_ and the base64 of at least {WEBHOOK_SECRET_BYTES} "
            "random bytes (e.g. `echo whsec_$(openssl rand -base64 32)`)"
        )

    def as_env(self) -> dict[str, str]:
        """These settings as the environment `from_env` reads: for a child process (a
        worker, an API server) that must see the same stores as its parent."""
        env = {
            "FARMACY_STORE": self.store,
            "FARMACY_DATA_DIR": str(self.data_dir),
            "FARMACY_POSTGRES_DSN": self.postgres_dsn or "",
            "FARMACY_POSTGRES_SCHEMA": self.postgres_schema,
            "KURRENTDB_URI": self.kurrentdb_uri or "",
            "FARMACY_SECRET": "" if self.demo_secret else self.secret,
            "FARMACY_COMMAND_QUEUE": str(self.command_queue),
            "FARMACY_PAYMENT_WEBHOOK_SECRET": self.payment_webhook_secret,
            "FARMACY_PAYMENT_WINDOW": f"{int(self.payment_window.total_seconds())}s",
            "FARMACY_PAYMENT_WEBHOOK_TOLERANCE": (
                f"{int(self.payment_webhook_tolerance.total_seconds())}s"
            ),
            "FARMACY_PICKUP_WINDOW": f"{int(self.pickup_window.total_seconds())}s",
            "FARMACY_NO_SHOW": self.no_show,
            "FARMACY_PAYMENTS_URL": self.payments_url,
            "FARMACY_NATS_URL": self.nats_url or "",
        }
        if self.command_concurrency is not None:
            env["FARMACY_COMMAND_CONCURRENCY"] = str(self.command_concurrency)
        env |= {
            "FARMACY_FRIDGE_CLOUD_URL": self.fridge_cloud_url or "",
            "FARMACY_STALE_AFTER": str(self.stale_after_seconds),
            "FARMACY_POLL_EVERY": str(self.poll_every_seconds),
            "FARMACY_POLL_RATE": str(self.poll_rate),
        }
        return env


def _whole(env: Mapping[str, str], name: str, *, minimum: int) -> int | None:
    """The whole number in `name`, or None when it is not set."""
    text = env.get(name, "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise SettingsError(f"{name}={text!r}: a whole number of at least {minimum}")
    return value


def secret_weakness(secret: str) -> str | None:
    """Why `secret` must not sign tokens anyone may present, or None."""
    if not secret:
        return "is not set"
    if secret in PUBLISHED_SECRETS:
        return "is a published default"
    if len(secret.encode()) < SECRET_BYTES:
        return f"is {len(secret.encode())} bytes, fewer than {SECRET_BYTES}"
    return None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name other than localhost: it may resolve anywhere
        return False


DEMO_SECRET_SETTINGS = {
    DEMO_SECRET_FILE: "FARMACY_SECRET",
    WEBHOOK_SECRET_FILE: "FARMACY_PAYMENT_WEBHOOK_SECRET",
}
"""The setting that replaces each secret the embedded demo keeps in its data directory."""


def read_demo_secret(data_dir: Path, name: str = DEMO_SECRET_FILE) -> str | None:
    try:
        return (data_dir / name).read_text().strip() or None
    except (FileNotFoundError, NotADirectoryError):  # none kept there (yet)
        return None


def demo_secret(
    data_dir: Path, name: str = DEMO_SECRET_FILE, make: Callable[[], str] | None = None
) -> str:
    """The embedded demo's secret for `data_dir`: made on first use (readable by its owner
    only), then the same for every process and every restart on that directory."""
    found = read_demo_secret(data_dir, name)
    if found:
        return found
    path = data_dir / name
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
                out.write((make or _random_secret)() + "\n")
        except FileExistsError:  # another process made it first: theirs is the one
            pass
        return path.read_text().strip()
    except OSError as error:  # a read-only or full data directory: say so, not a traceback
        setting = DEMO_SECRET_SETTINGS.get(name, "the secret's setting")
        raise SettingsError(
            f"cannot keep the demo's {name} in FARMACY_DATA_DIR={data_dir} "
            f"({error.strerror or error}): make the directory writable, or set {setting}"
        ) from None
