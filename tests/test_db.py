"""The database layer against a real PostgreSQL (embedded, or SQUEEZER_TEST_DATABASE_URL)."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid

import psycopg
import pytest

from squeezer.db import keys, migrate, open_database, ratelimit
from squeezer.db.errors import DatabaseUnavailable, MigrationError
from squeezer.db.migrate import available


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    """A fresh database per test module (and xdist worker)."""
    external = os.environ.get("SQUEEZER_TEST_DATABASE_URL")
    if external:
        name = f"sqz_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(external, autocommit=True) as admin:
            admin.execute(f"create database {name}")
        url = psycopg.conninfo.make_conninfo(external, dbname=name)
        yield open_database(url, tmp_path_factory.mktemp("data"))
        with psycopg.connect(external, autocommit=True) as admin:
            admin.execute(f"drop database {name} with (force)")
        return
    db = open_database(None, tmp_path_factory.mktemp("data"))
    yield db
    db.close()


@pytest.fixture(scope="module")
def migrated(database):
    with database.connect() as conn:
        migrate(conn)
    return database


def run(coro):
    return asyncio.run(coro)


async def _with_conn(db, fn):
    conn = await db.aconnect(autocommit=True)
    try:
        return await fn(conn)
    finally:
        await conn.close()


def test_migrations_are_numbered_and_apply_once(database):
    assert [m.version for m in available()][0] == 1
    with database.connect() as conn:
        first = migrate(conn)
    with database.connect() as conn:
        second = migrate(conn)
        tables = {r[0] for r in conn.execute(
            "select tablename from pg_tables where schemaname = 'public'")}
    assert second == []
    assert first == [] or first[0] == "0001_initial"
    assert {"api_keys", "files", "jobs", "webhook_deliveries", "rate_limit_windows",
            "squeezer_migrations"} <= tables


def test_concurrent_starts_migrate_once(migrated):
    results: list[list[str]] = []

    def start() -> None:
        with migrated.connect() as conn:
            results.append(migrate(conn))

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [[], [], [], []]
    with migrated.connect() as conn:
        assert conn.execute("select count(*) from squeezer_migrations").fetchone()[0] == len(available())


def test_a_database_from_newer_code_is_refused(migrated):
    with migrated.connect(autocommit=True) as conn:
        conn.execute("insert into squeezer_migrations (version, name) values (9999, 'future')")
        try:
            with pytest.raises(MigrationError, match="upgrade Squeezer"):
                migrate(conn)
        finally:
            conn.execute("delete from squeezer_migrations where version = 9999")


def test_unreachable_database_is_a_named_error(tmp_path):
    db = open_database("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2", tmp_path)
    with pytest.raises(DatabaseUnavailable) as info:
        db.connect()
    assert info.value.code == "database_unavailable"


def test_keys_are_shown_once_and_stored_hashed(migrated):
    async def scenario(conn):
        record, secret = await keys.create(conn, "ci", admin=True)
        cur = await conn.execute("select row_to_json(k)::text from api_keys k where id = %s", (record.id,))
        stored = (await cur.fetchone())[0]
        found = await keys.authenticate(conn, secret)
        return record, secret, stored, found

    record, secret, stored, found = run(_with_conn(migrated, scenario))
    assert secret.startswith("sqz_") and len(secret) == 47
    assert secret not in stored and secret[12:] not in stored
    assert record.prefix == secret[:12] and record.is_admin
    assert found is not None and found.id == record.id and found.last_used_at is not None


def test_unknown_revoked_and_malformed_keys_are_indistinguishable(migrated):
    async def scenario(conn):
        record, secret = await keys.create(conn, "to revoke")
        assert await keys.revoke(conn, record.id) is True
        assert await keys.revoke(conn, record.id) is False
        return [
            await keys.authenticate(conn, secret),  # revoked
            await keys.authenticate(conn, keys.new_secret()),  # unknown
            await keys.authenticate(conn, "sqz_short"),  # malformed
            await keys.authenticate(conn, ""),
            await keys.authenticate(conn, None),
            await keys.authenticate(conn, secret + "x"),
            await keys.authenticate(conn, "' or 1=1 --"),
        ]

    assert run(_with_conn(migrated, scenario)) == [None] * 7


def test_listing_and_finding_keys(migrated):
    async def scenario(conn):
        live, _ = await keys.create(conn, "listed")
        gone, _ = await keys.create(conn, "revoked one")
        await keys.revoke(conn, gone.id)
        return (live, gone, await keys.list_keys(conn), await keys.list_keys(conn, include_revoked=True),
                await keys.find(conn, str(live.id)[:8]), await keys.find(conn, live.prefix))

    live, gone, active, everything, by_id, by_prefix = run(_with_conn(migrated, scenario))
    assert live.id in {k.id for k in active} and gone.id not in {k.id for k in active}
    assert gone.id in {k.id for k in everything}
    assert [k.id for k in by_id] == [live.id] and [k.id for k in by_prefix] == [live.id]


def test_rate_limit_counts_per_key_and_window(migrated):
    async def scenario(conn):
        a, _ = await keys.create(conn, "a")
        b, _ = await keys.create(conn, "b")
        decisions = [await ratelimit.hit(conn, a.id, 3, 900) for _ in range(5)]
        other = await ratelimit.hit(conn, b.id, 3, 900)
        cur = await conn.execute("select now()")
        return decisions, other, (await cur.fetchone())[0]

    decisions, other, now = run(_with_conn(migrated, scenario))
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0, 0]
    assert all(d.limit == 3 for d in decisions)
    assert 0 < (decisions[0].reset_at - now).total_seconds() <= 900
    # rolling: the full window must end, then a third of it slide out (3 -> 2 weighted hits)
    assert 300 <= decisions[-1].retry_after(now) <= 900 + 300
    assert other.allowed and other.remaining == 2


def test_rate_limit_holds_across_concurrent_connections(migrated):
    """Twenty requests of one key from ten connections at once: exactly the limit passes."""

    async def scenario():
        setup = await migrated.aconnect(autocommit=True)
        key, _ = await keys.create(setup, "busy")
        await setup.close()
        conns = [await migrated.aconnect(autocommit=True) for _ in range(10)]
        try:
            results = await asyncio.gather(
                *(ratelimit.hit(conns[i % 10], key.id, 12, 900) for i in range(20))
            )
        finally:
            for c in conns:
                await c.close()
        return results

    results = run(scenario())
    assert sum(d.allowed for d in results) == 12
    assert sorted(d.remaining for d in results if d.allowed) == list(range(12))


def test_old_windows_are_forgotten(migrated):
    async def scenario(conn):
        key, _ = await keys.create(conn, "old")
        await conn.execute(
            "insert into rate_limit_windows values (%s, now() - interval '2 hours', 5)", (key.id,))
        await ratelimit.hit(conn, key.id, 10, 900)
        removed = await ratelimit.forget_old_windows(conn, 900)
        cur = await conn.execute("select count(*) from rate_limit_windows where key_id = %s", (key.id,))
        return removed, (await cur.fetchone())[0]

    removed, left = run(_with_conn(migrated, scenario))
    assert removed >= 1 and left == 1


def test_the_rate_window_rolls_instead_of_resetting_at_its_edge():
    """Compressor.app documents a rolling window: a full previous window still weighs in just
    after the edge (fixed windows let a fresh burst of the whole limit through at once), and
    room comes back gradually as it slides out."""
    assert ratelimit.weighted(100, 0, 0.0, 900.0) == 100  # at the edge: the last 900 s, full
    assert ratelimit.weighted(100, 10, 450.0, 900.0) == 60  # half of it has slid out
    assert ratelimit.weighted(100, 10, 900.0, 900.0) == 10
    # one more request fits once 1 % of the full previous window has slid out: 9 s, not 0
    assert ratelimit.wait_for_room(100, 0, 0.0, 900.0, 100) == pytest.approx(9.0)
    # the current window alone full: its end, then its own 1 %
    assert ratelimit.wait_for_room(0, 100, 300.0, 900.0, 100) == pytest.approx(609.0)


def test_a_full_previous_window_refuses_a_burst_after_the_edge(migrated):
    async def scenario(conn):
        key, _ = await keys.create(conn, "edge")
        await conn.execute(
            "insert into rate_limit_windows values (%s, to_timestamp(floor(extract(epoch from "
            "now()) / 900) * 900 - 900), 1000000000)", (key.id,))
        decision = await ratelimit.hit(conn, key.id, 3, 900)
        cur = await conn.execute("select now()")
        return decision, (await cur.fetchone())[0]

    decision, now = run(_with_conn(migrated, scenario))
    assert not decision.allowed and decision.remaining == 0
    assert 1 <= decision.retry_after(now) <= 900
