#!/usr/bin/env python3
"""Reference consumer of the grouptalk-scim change feed (docs/feed.md): mirrors one tenant's
users and groups into a local SQLite file.

Python standard library only. The cursor is stored in the same SQLite transaction as the changes
it covers, so a consumer killed at any moment resumes exactly where its last commit left it (a
page may be applied again: applying by revision makes that harmless). A 410 (the cursor is too
old, or the directory was restored from a backup) starts a new snapshot.

    GROUPTALK_FEED_TOKEN=$(grouptalk-scim token issue --tenant acme --scope feed.read | tail -n1) \\
        python3 feed_consumer.py --url https://scim.example.com --db mirror.db --follow

Options: --url (the appliance's public origin), --db (the mirror), --cafile (a CA bundle to
trust instead of the system's), --follow (long-poll forever; default: stop once caught up),
--wait (long-poll seconds, default 30), --page (page size, default 500).

The token comes from the environment (GROUPTALK_FEED_TOKEN), never the command line, where
other users of the machine could read it.

Mirror schema: resources(id, type, revision, body) with body the SCIM resource without
`members`; members(group_id, member_id); deleted(id, revision); state(key, value).

A deleted id is remembered with the revision of its delete: a resource restored from the
appliance's trash (`grouptalk-scim trash restore`) comes back under the same id with a higher
revision, as a `create`, and is applied.
"""

import argparse
import http.client
import json
import os
import sqlite3
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    id TEXT PRIMARY KEY, type TEXT NOT NULL, revision INTEGER NOT NULL, body TEXT
);
CREATE TABLE IF NOT EXISTS members (
    group_id TEXT NOT NULL, member_id TEXT NOT NULL, PRIMARY KEY (group_id, member_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS deleted (id TEXT PRIMARY KEY, revision INTEGER);
-- Ids seen by the snapshot in progress: what it did not see is swept at its end.
CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT);
"""


class Expired(Exception):
    """410 expiredCursor: take a new snapshot."""


class Feed:
    def __init__(self, url, token, cafile=None):
        self.base = url.rstrip("/") + "/feed/v1"
        self.token = token
        self.context = ssl.create_default_context(cafile=cafile)

    def _request(self, method, path, params=None, body=None, timeout=30):
        url = self.base + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", "Bearer " + self.token)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self.context, timeout=timeout) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")
            if e.code == 410:
                raise Expired(detail) from None
            raise RuntimeError(f"{method} {path}: HTTP {e.code}: {detail}") from None

    def snapshot(self, cursor, count):
        params = {"count": count}
        if cursor:
            params["cursor"] = cursor
        return self._request("GET", "/snapshot", params)

    def changes(self, after, limit, wait):
        params = {"after": after, "limit": limit, "wait": wait}
        return self._request("GET", "/changes", params, timeout=wait + 30)

    def put_position(self, after):
        return self._request("PUT", "/position", body={"after": after})


def get_state(db, key):
    row = db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def set_state(db, key, value):
    if value is None:
        db.execute("DELETE FROM state WHERE key = ?", (key,))
    else:
        db.execute(
            "INSERT INTO state (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )


def store_resource(db, resource, revision):
    body = {k: v for k, v in resource.items() if k != "members"}
    rtype = "Group" if "urn:ietf:params:scim:schemas:core:2.0:Group" in resource.get(
        "schemas", []) else "User"
    db.execute(
        "INSERT INTO resources (id, type, revision, body) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET type = excluded.type, revision = excluded.revision, "
        "body = excluded.body",
        (resource["id"], rtype, revision, json.dumps(body, sort_keys=True)),
    )


def apply_snapshot_page(db, page):
    """A snapshot page overwrites what it shows: after a restore, the directory may hold older
    revisions than the mirror. A group too large for one page comes in slices: a page that
    `continues` starts with the rest of the previous page's last group, whose members add to
    those already taken (its revision and attributes stay those of its first slice)."""
    for i, resource in enumerate(page["resources"]):
        rid = resource["id"]
        if i == 0 and page.get("continues"):
            db.executemany(
                "INSERT OR IGNORE INTO members (group_id, member_id) VALUES (?, ?)",
                [(rid, m["value"]) for m in resource.get("members", [])],
            )
            continue
        store_resource(db, resource, resource["meta"]["revision"])
        db.execute("INSERT OR IGNORE INTO seen (id) VALUES (?)", (rid,))
        if "members" in resource:
            db.execute("DELETE FROM members WHERE group_id = ?", (rid,))
            db.executemany(
                "INSERT OR IGNORE INTO members (group_id, member_id) VALUES (?, ?)",
                [(rid, m["value"]) for m in resource["members"]],
            )


def finish_snapshot(db, watermark):
    """Everything the snapshot did not show is gone; changes follow from its watermark."""
    db.execute("DELETE FROM members WHERE group_id NOT IN (SELECT id FROM seen)")
    db.execute("DELETE FROM resources WHERE id NOT IN (SELECT id FROM seen)")
    db.execute("DELETE FROM seen")
    db.execute("DELETE FROM deleted")
    set_state(db, "snapshot_cursor", None)
    set_state(db, "watermark", None)
    set_state(db, "after", watermark)


def apply_change(db, change):
    rid = change["id"]
    revision = change["revision"]
    gone = db.execute("SELECT revision FROM deleted WHERE id = ?", (rid,)).fetchone()
    if gone:
        # Deleted at that revision: anything not newer is older news. Newer: restored.
        if gone[0] is None or gone[0] >= revision:
            return
        db.execute("DELETE FROM deleted WHERE id = ?", (rid,))
    held = db.execute("SELECT revision FROM resources WHERE id = ?", (rid,)).fetchone()
    if held and held[0] >= revision:
        return
    if change["op"] == "delete":
        db.execute("DELETE FROM resources WHERE id = ?", (rid,))
        db.execute("DELETE FROM members WHERE group_id = ?", (rid,))
        db.execute(
            "INSERT INTO deleted (id, revision) VALUES (?, ?) ON CONFLICT (id) "
            "DO UPDATE SET revision = max(coalesce(revision, 0), excluded.revision)",
            (rid, revision),
        )
        return
    if change["resource"] is not None:
        store_resource(db, change["resource"], revision)
    elif held:
        db.execute("UPDATE resources SET revision = ? WHERE id = ?", (revision, rid))
    else:
        # Deleted since: only its delete is still to come. Hold the revision meanwhile.
        db.execute(
            "INSERT INTO resources (id, type, revision, body) VALUES (?, ?, ?, NULL)",
            (rid, change["resourceType"], revision),
        )
    members = change.get("members") or {}
    db.executemany(
        "INSERT OR IGNORE INTO members (group_id, member_id) VALUES (?, ?)",
        [(rid, m) for m in members.get("added", [])],
    )
    db.executemany(
        "DELETE FROM members WHERE group_id = ? AND member_id = ?",
        [(rid, m) for m in members.get("removed", [])],
    )


def snapshot(feed, db, page_size):
    """Take (or resume) a snapshot; each page and its cursor in one transaction."""
    cursor = get_state(db, "snapshot_cursor")
    while True:
        try:
            page = feed.snapshot(cursor, page_size)
        except Expired:
            if cursor is None:
                raise
            # The resumed snapshot is too old: start it again.
            with db:
                db.execute("DELETE FROM seen")
                set_state(db, "snapshot_cursor", None)
            cursor = None
            continue
        with db:
            if cursor is None:
                db.execute("DELETE FROM seen")
            apply_snapshot_page(db, page)
            cursor = page.get("nextCursor")
            if cursor is None:
                finish_snapshot(db, page["watermark"])
                return
            set_state(db, "snapshot_cursor", cursor)
            set_state(db, "watermark", page["watermark"])


def run(feed, db, follow, wait, page_size):
    while True:
        after = get_state(db, "after")
        if after is None:
            snapshot(feed, db, page_size)
            continue
        try:
            page = feed.changes(after, page_size, wait if follow else 0)
        except Expired as e:
            print(f"cursor expired ({e}); taking a new snapshot", file=sys.stderr)
            with db:
                set_state(db, "after", None)
                set_state(db, "snapshot_cursor", None)
            continue
        with db:
            for change in page["changes"]:
                apply_change(db, change)
            set_state(db, "after", page["nextAfter"])
        if page["changes"]:
            try:
                feed.put_position(page["nextAfter"])
            except (Expired, RuntimeError, OSError) as e:
                print(f"could not record the position: {e}", file=sys.stderr)
        if not page["changes"] and not page["moreAvailable"] and not follow:
            return


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--cafile")
    ap.add_argument("--follow", action="store_true")
    ap.add_argument("--wait", type=int, default=30)
    ap.add_argument("--page", type=int, default=500)
    args = ap.parse_args()
    token = os.environ.get("GROUPTALK_FEED_TOKEN")
    if not token:
        sys.exit("error: set GROUPTALK_FEED_TOKEN to a token with scope feed.read")
    db = sqlite3.connect(args.db, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.executescript(SCHEMA)
    # A mirror made before deletes were remembered by revision: add the column (NULL: an old
    # delete, never undone).
    if "revision" not in [r[1] for r in db.execute("PRAGMA table_info(deleted)")]:
        db.execute("ALTER TABLE deleted ADD COLUMN revision INTEGER")
    # `with db` below opens and commits one transaction per page.
    db.isolation_level = "DEFERRED"
    feed = Feed(args.url, token, args.cafile)
    while True:
        try:
            run(feed, db, args.follow, args.wait, args.page)
            return
        except (OSError, RuntimeError, ValueError, http.client.HTTPException) as e:
            if not args.follow:
                raise
            print(f"feed unavailable ({e}); retrying in 2 s", file=sys.stderr)
            time.sleep(2)


if __name__ == "__main__":
    main()
