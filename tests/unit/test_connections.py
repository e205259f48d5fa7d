"""The connection budget's arithmetic (ops/connections.py); the e2e test counts it for real."""

from __future__ import annotations

from ops import connections
from ops.settings import Settings

DSN = "postgresql://postgres@127.0.0.1:5432/farmacy"


def postgres(command_concurrency: int | None = None) -> Settings:
    return Settings(store="postgres", postgres_dsn=DSN, command_concurrency=command_concurrency)


def test_an_api_process_holds_its_command_lane_plus_a_few() -> None:
    four, eight = connections.api(postgres()), connections.api(postgres(command_concurrency=8))
    assert (four.store, four.store_kept, four.reads) == (6, 4, 3)
    assert eight.store - four.store == 4


def test_the_event_store_pool_is_sized_through_the_librarys_settings() -> None:
    env = connections.api(postgres()).event_store_env()
    assert env == {
        "POSTGRES_POOL_SIZE": "4",
        "POSTGRES_MAX_OVERFLOW": "2",
        "POSTGRES_CONNECT_TIMEOUT": str(connections.POOL_TIMEOUT_SECONDS),
    }


def test_read_models_in_one_worker_process_share_its_pools_but_not_their_locks() -> None:
    one, six = connections.worker(1), connections.worker(6)
    assert (one.store, one.reads, one.locks) == (1, 1, 1)
    assert (six.store, six.reads, six.locks) == (2, 4, 6)
    assert six.total < 6 * one.total


def test_the_stack_of_the_issue_fits_well_inside_postgresqls_default_100() -> None:
    # 4 API processes, a worker process per read model (6), fulfilment, snapshots
    assert connections.stack(postgres(), 4, 6) == 4 * 9 + 6 * 3 + 5 + 4 == 63
