"""``squeezer keys``: API keys of the HTTP service, in its database."""

from __future__ import annotations

import argparse
import json
from typing import Any

from squeezer.cli.base import (
    EXIT_FAILED,
    EXIT_OK,
    Parser,
    _consoles,
    _stderr_line,
    command,
    error_line,
)

# --- squeezer keys ------------------------------------------------------------------------------


def _keys_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=Parser)
    create = sub.add_parser("create", help="create a key and print it (shown only this once)")
    create.add_argument("name", help="what the key is for, e.g. a client's name")
    create.add_argument("--admin", action="store_true", help="may manage other keys")
    create.add_argument("--json", action="store_true", help="print the key as JSON")
    listing = sub.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--all", action="store_true", help="include revoked keys")
    listing.add_argument("--json", action="store_true", help="print the keys as JSON")
    revoke = sub.add_parser("revoke", help="revoke a key at once, for every server")
    revoke.add_argument("key", metavar="ID", help="the key's id, or the start of its id or prefix")


def _key_json(key: Any) -> dict[str, Any]:
    return {
        "id": str(key.id), "name": key.name, "prefix": key.prefix, "admin": key.is_admin,
        "created_at": key.created_at.isoformat(),
        "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


@command(
    "keys",
    arguments=_keys_arguments,
    description="Manage the API keys of the HTTP service. Uses SQUEEZER_DATABASE_URL, or the "
    "embedded database in SQUEEZER_DATA_DIR (default ./squeezer-data).",
)
def run_keys(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import asyncio

    from squeezer.config import load
    from squeezer.db import keys, migrate, open_database
    from squeezer.db.errors import DatabaseError

    config = load()
    out, _ = _consoles()

    async def act(db: Any) -> int:
        conn = await db.aconnect(autocommit=True)
        try:
            if args.action == "create":
                key, secret = await keys.create(conn, args.name, admin=args.admin)
                if args.json:
                    print(json.dumps({**_key_json(key), "key": secret}))
                else:
                    print(secret)
                    _stderr_line(f"created key {key.id} ({key.name}); it is shown only this once")
                return EXIT_OK
            if args.action == "list":
                found = await keys.list_keys(conn, include_revoked=args.all)
                if args.json:
                    print(json.dumps([_key_json(k) for k in found]))
                    return EXIT_OK
                from rich.table import Table

                table = Table(box=None)
                for column in ("id", "name", "prefix", "admin", "created", "last used", "revoked"):
                    table.add_column(column)
                for k in found:
                    table.add_row(str(k.id), k.name, k.prefix + "…", "yes" if k.is_admin else "",
                                  f"{k.created_at:%Y-%m-%d %H:%M}",
                                  f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "",
                                  f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "")
                out.print(table)
                return EXIT_OK
            matches = await keys.find(conn, args.key)
            if len(matches) != 1:
                what = "no key matches" if not matches else f"{len(matches)} keys match"
                _stderr_line(error_line(args.key, "key_not_found" if not matches else "ambiguous_key",
                                        f"{what}; give more of the id"))
                return EXIT_FAILED
            if not await keys.revoke(conn, matches[0].id):
                _stderr_line(error_line(args.key, "already_revoked", "the key was already revoked"))
                return EXIT_FAILED
            _stderr_line(f"revoked key {matches[0].id} ({matches[0].name})")
            return EXIT_OK
        finally:
            await conn.close()

    try:
        db = open_database(config.database.url, config.data_dir)
        try:
            with db.connect() as conn:
                migrate(conn)
            return asyncio.run(act(db))
        finally:
            db.close()
    except DatabaseError as exc:
        _stderr_line(error_line("database", exc.code, exc.message))
        return EXIT_FAILED
