"""Configuration comes from the environment; `farmacy --help` lists every setting."""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

SETTINGS_HELP = {
    "FARMACY_STORE": "sqlite (default, embedded), postgres, or kurrentdb",
    "FARMACY_DATA_DIR": "where SQLite files live (default ./var)",
    "FARMACY_POSTGRES_DSN": "PostgreSQL for events (postgres) and read models (postgres, "
    "kurrentdb), e.g. postgresql://postgres@127.0.0.1:5432/farmacy",
    "FARMACY_POSTGRES_SCHEMA": "PostgreSQL schema to use (default public)",
    "KURRENTDB_URI": "KurrentDB/EventStoreDB, e.g. kurrentdb://127.0.0.1:2113?tls=false",
    "FARMACY_SECRET": "signs bearer tokens and verifies payment webhooks: at least 32 bytes, "
    "required with a server store or an API beyond loopback (the embedded demo makes its own, "
    "in FARMACY_DATA_DIR/secret)",
    "FARMACY_PORT": "the main job's API port (farmacy run; default 8000)",
    "FARMACY_LOG_FORMAT": "console or json (default: console on a terminal, else json)",
    "FARMACY_COMMAND_CONCURRENCY": "commands one API process runs at once (default by store: "
    "sqlite 2, postgres 4, kurrentdb 16)",
    "FARMACY_COMMAND_QUEUE": "commands that may wait for a turn before the next gets 503 "
    "(default 256)",
    "FARMACY_READ_LOG_PER_SECOND": "successful reads one API process logs a line for, per "
    "second, at most; the rest are counted on the next line (default 100; errors and writes "
    "are always logged)",
    "FARMACY_SERVER": "the ASGI server farmacy api runs: uvicorn (default) or granian",
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
        )
        queue = _whole(env, "FARMACY_COMMAND_QUEUE", minimum=0)
        if queue is not None:
            settings = replace(settings, command_queue=queue)
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
        }
        if self.command_concurrency is not None:
            env["FARMACY_COMMAND_CONCURRENCY"] = str(self.command_concurrency)
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


def read_demo_secret(data_dir: Path) -> str | None:
    try:
        return (data_dir / DEMO_SECRET_FILE).read_text().strip() or None
    except FileNotFoundError:
        return None


def demo_secret(data_dir: Path) -> str:
    """The embedded demo's secret for `data_dir`: made on first use (readable by its owner
    only), then the same for every process and every restart on that directory."""
    found = read_demo_secret(data_dir)
    if found:
        return found
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / DEMO_SECRET_FILE
    try:
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            out.write(_random_secret() + "\n")
    except FileExistsError:  # another process made it first: theirs is the one
        pass
    return path.read_text().strip()
