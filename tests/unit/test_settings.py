"""Configuration: the store is chosen by the environment, and mistakes name the setting."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ops.settings import Settings, SettingsError
from ops.stores import event_store_env, redacted


def test_sqlite_is_the_default_and_keeps_its_events_under_the_data_dir(tmp_path: Path) -> None:
    settings = Settings.from_env({"FARMACY_DATA_DIR": str(tmp_path / "data")})
    assert settings.store == "sqlite"
    env = event_store_env(settings)
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite"
    assert env["SQLITE_DBNAME"] == str(tmp_path / "data" / "events.sqlite")
    assert (tmp_path / "data").is_dir()


def test_postgres_settings_come_from_the_dsn_and_schema() -> None:
    settings = Settings.from_env(
        {
            "FARMACY_STORE": "postgres",
            "FARMACY_POSTGRES_DSN": "postgresql://farmacy:s3cret@db.internal:6432/orders",
            "FARMACY_POSTGRES_SCHEMA": "eu",
        }
    )
    env = event_store_env(settings)
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"]) == ("db.internal", "6432")
    assert (env["POSTGRES_DBNAME"], env["POSTGRES_USER"]) == ("orders", "farmacy")
    assert env["POSTGRES_PASSWORD"] == "s3cret"
    assert env["POSTGRES_SCHEMA"] == "eu"


def test_kurrentdb_goes_through_the_eventsourcing_kurrentdb_adapter() -> None:
    uri = "kurrentdb://admin:changeit@node1:2113,node2:2113,node3:2113?tls=true"
    settings = Settings.from_env({"FARMACY_STORE": "kurrentdb", "KURRENTDB_URI": uri})
    assert event_store_env(settings) == {
        "PERSISTENCE_MODULE": "eventsourcing_kurrentdb",
        "KURRENTDB_URI": uri,
    }


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"FARMACY_STORE": "mongo"}, "FARMACY_STORE"),
        ({"FARMACY_STORE": "postgres"}, "FARMACY_POSTGRES_DSN"),
        ({"FARMACY_STORE": "kurrentdb"}, "KURRENTDB_URI"),
    ],
)
def test_a_missing_or_wrong_setting_is_named(environ: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(environ)


def test_passwords_never_reach_a_message() -> None:
    assert "hunter2" not in redacted("postgresql://app:hunter2@db:5432/farmacy")
    assert "hunter2" not in redacted("host=db password=hunter2 dbname=farmacy")
    assert "kurrentdb://admin:***@node1:2113" in redacted("kurrentdb://admin:hunter2@node1:2113")


def test_commands_run_a_few_at_a_time_sized_to_the_store_unless_told() -> None:
    assert Settings.from_env({}).command_lane_size == 2
    postgres = {"FARMACY_STORE": "postgres", "FARMACY_POSTGRES_DSN": "postgresql://db/x"}
    assert Settings.from_env(postgres).command_lane_size == 4
    told = Settings.from_env({"FARMACY_COMMAND_CONCURRENCY": "7", "FARMACY_COMMAND_QUEUE": "0"})
    assert (told.command_lane_size, told.command_queue) == (7, 0)
    assert Settings.from_env({}).command_queue == 256


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FARMACY_COMMAND_CONCURRENCY", "0"),
        ("FARMACY_COMMAND_CONCURRENCY", "many"),
        ("FARMACY_COMMAND_QUEUE", "-1"),
    ],
)
def test_a_command_lane_setting_that_is_not_a_count_is_named(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


@pytest.mark.parametrize(
    "settings",
    [
        Settings(),
        Settings(store="postgres", postgres_dsn="postgresql://db/x", postgres_schema="s1"),
        Settings(store="kurrentdb", kurrentdb_uri="kurrentdb://h:2113", secret="s3cret"),
        Settings(data_dir=Path("/tmp/f"), command_concurrency=3, command_queue=0),
    ],
)
def test_a_child_process_reads_back_exactly_the_settings_it_was_given(settings: Settings) -> None:
    assert Settings.from_env(settings.as_env()) == settings


def test_reading_the_settings_never_makes_a_secret_or_a_directory(tmp_path: Path) -> None:
    settings = Settings.from_env({"FARMACY_DATA_DIR": str(tmp_path / "typo")})
    assert settings.demo_secret and settings.secret == ""
    assert not (tmp_path / "typo").exists()


def test_the_demo_makes_its_secret_once_per_data_dir(tmp_path: Path) -> None:
    settings = Settings.from_env({"FARMACY_DATA_DIR": str(tmp_path)}).for_signing()
    assert len(settings.secret) >= 32
    again = Settings.from_env({"FARMACY_DATA_DIR": str(tmp_path)})
    assert again.secret == settings.secret == again.for_signing().secret
    assert Settings().secret != Settings().secret  # no secret written in the code


def test_a_demo_secret_that_cannot_be_kept_names_the_directory_and_the_setting(
    tmp_path: Path,
) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")  # as a read-only directory, nothing can be made in it
    settings = Settings.from_env({"FARMACY_DATA_DIR": str(not_a_directory)})
    with pytest.raises(SettingsError, match=f"FARMACY_DATA_DIR={not_a_directory}.*FARMACY_SECRET"):
        settings.for_signing()
    with pytest.raises(SettingsError, match="FARMACY_PAYMENT_WEBHOOK_SECRET"):
        settings.for_payments()


@pytest.mark.parametrize(
    ("environ", "host", "why"),
    [
        ({"FARMACY_STORE": "postgres", "FARMACY_POSTGRES_DSN": "postgresql://db/x"}, "127.0.0.1",
         "is not set"),
        ({"FARMACY_STORE": "kurrentdb", "KURRENTDB_URI": "kurrentdb://h",
          "FARMACY_SECRET": "x" * 31}, "127.0.0.1", "is 31 bytes"),
        ({}, "0.0.0.0", "is not set"),
        ({"FARMACY_SECRET": "farmacy-local-development-secret"}, "10.0.0.5",
         "is a published default"),
    ],
)  # fmt: skip
def test_an_exposed_api_needs_a_strong_secret_named_in_one_line(
    environ: dict[str, str], host: str, why: str, tmp_path: Path
) -> None:
    settings = Settings.from_env({"FARMACY_DATA_DIR": str(tmp_path), **environ})
    with pytest.raises(SettingsError, match=f"^FARMACY_SECRET {why}") as refused:
        settings.for_signing(host)
    assert "\n" not in str(refused.value)
    strong = Settings.from_env({**environ, "FARMACY_SECRET": "k" * 32})
    assert strong.for_signing(host).secret == "k" * 32


# ---- money: the webhook secret, the windows, the no-show policy -----------------------------

STRONG_WEBHOOK_SECRET = "whsec_" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("", "is not set"),
        ("0123456789abcdef0123456789abcdef", "does not start with whsec_"),
        ("whsec_c2hvcnQ=", "fewer than 24"),
        ("whsec_not base64!", "not whsec_ and base64"),
    ],
)
def test_a_missing_or_weak_webhook_secret_is_refused_outside_the_demo(
    secret: str, why: str
) -> None:
    env = {"FARMACY_STORE": "postgres", "FARMACY_POSTGRES_DSN": "postgresql://x/y"}
    settings = Settings.from_env({**env, "FARMACY_PAYMENT_WEBHOOK_SECRET": secret})
    with pytest.raises(SettingsError, match="FARMACY_PAYMENT_WEBHOOK_SECRET") as refused:
        settings.for_payments()
    assert why in str(refused.value)


def test_a_strong_webhook_secret_is_taken_and_the_demo_makes_its_own_once(tmp_path: Path) -> None:
    env = {"FARMACY_STORE": "postgres", "FARMACY_POSTGRES_DSN": "postgresql://x/y"}
    strong = Settings.from_env({**env, "FARMACY_PAYMENT_WEBHOOK_SECRET": STRONG_WEBHOOK_SECRET})
    assert strong.for_payments().payment_webhook_secret == STRONG_WEBHOOK_SECRET
    demo = Settings.from_env({"FARMACY_DATA_DIR": str(tmp_path)})
    made = demo.for_payments().payment_webhook_secret
    assert made.startswith("whsec_") and made == demo.for_payments().payment_webhook_secret
    assert Settings.from_env({"FARMACY_DATA_DIR": str(tmp_path)}).payment_webhook_secret == made
    with pytest.raises(SettingsError):
        demo.for_payments("0.0.0.0")


def test_windows_and_the_no_show_policy_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "FARMACY_PAYMENT_WINDOW": "90s",
            "FARMACY_PICKUP_WINDOW": "3h",
            "FARMACY_NO_SHOW": "charge",
        }
    )
    assert (settings.payment_window, settings.pickup_window, settings.no_show) == (
        timedelta(seconds=90),
        timedelta(hours=3),
        "charge",
    )
    defaults = Settings.from_env({})
    assert (defaults.payment_window, defaults.pickup_window, defaults.no_show) == (
        timedelta(minutes=10),
        timedelta(hours=2),
        "release",
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FARMACY_PAYMENT_WINDOW", "ten minutes"),
        ("FARMACY_PICKUP_WINDOW", "0"),
        ("FARMACY_PICKUP_WINDOW", "30d"),
        ("FARMACY_NO_SHOW", "forgive"),
    ],
)
def test_a_wrong_window_or_policy_is_one_line_naming_it(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_a_server_store_names_no_payment_processor_by_default() -> None:
    env = {"FARMACY_STORE": "postgres", "FARMACY_POSTGRES_DSN": "postgresql://x/y"}
    assert Settings.from_env(env).payments_url == ""
    assert Settings.from_env({}).payments_url == "http://127.0.0.1:8100"  # the demo's simulator
