"""`squeezer keys` against a real PostgreSQL, run as the user runs it (a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from squeezer.db import open_database


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    db = open_database(os.environ.get("SQUEEZER_TEST_DATABASE_URL"), tmp_path_factory.mktemp("pg"))
    yield {**os.environ, "SQUEEZER_DATABASE_URL": db.url}
    db.close()


def squeezer(env, *args):
    return subprocess.run([sys.executable, "-m", "squeezer", "keys", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_create_list_revoke(env):
    made = squeezer(env, "create", "ci client", "--json")
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)
    assert key["key"].startswith("sqz_") and key["name"] == "ci client" and key["revoked_at"] is None

    listed = squeezer(env, "list", "--json")
    assert listed.returncode == 0
    rows = {row["id"]: row for row in json.loads(listed.stdout)}
    assert key["id"] in rows and "key" not in rows[key["id"]]
    assert key["key"] not in listed.stdout  # secrets are never listed

    revoked = squeezer(env, "revoke", key["id"][:13])
    assert revoked.returncode == 0 and "revoked key" in revoked.stderr
    assert key["id"] not in {r["id"] for r in json.loads(squeezer(env, "list", "--json").stdout)}
    everything = json.loads(squeezer(env, "list", "--all", "--json").stdout)
    assert next(r for r in everything if r["id"] == key["id"])["revoked_at"] is not None

    again = squeezer(env, "revoke", key["id"])
    assert again.returncode == 1
    assert again.stderr.strip() == f"error: {key['id']}: already_revoked: the key was already revoked"


def test_plain_create_prints_only_the_key_on_stdout(env):
    made = squeezer(env, "create", "plain")
    assert made.returncode == 0
    assert made.stdout.strip().startswith("sqz_") and len(made.stdout.strip()) == 47
    assert "shown only this once" in made.stderr


def test_unknown_key_and_usage_errors(env):
    missing = squeezer(env, "revoke", "ffffffff-0000")
    assert missing.returncode == 1 and "key_not_found" in missing.stderr
    assert "Traceback" not in missing.stderr
    usage = squeezer(env, "frobnicate")
    assert usage.returncode == 2


def test_unreachable_database_is_one_line(env):
    broken = {**env, "SQUEEZER_DATABASE_URL": "postgresql://x@127.0.0.1:1/x?connect_timeout=2"}
    result = squeezer(broken, "list")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: database: database_unavailable:")
