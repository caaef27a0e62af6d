//! Snapshot pages (`GET /feed/v1/snapshot`, docs/feed.md): every live resource of a tenant as of
//! a watermark, users then groups in `seq` order, a large group's members split across pages,
//! and the deletion brake's images in place of the resources it holds.

use rusqlite::{params, Connection};

use super::{check, meta, Cursor, CursorError, MAX_PAGE};
use crate::domain::{ResourceId, TenantId};
use crate::scim::schema::ResourceKind;
use crate::store::brake;
use crate::store::resources::{self, Member, Stored, COLUMNS};
use crate::store::Result;

/// Most group members one snapshot page carries, summed over its groups (a page always holds at
/// least one resource, however large the group).
pub const SNAPSHOT_MEMBER_BUDGET: usize = 20_000;

/// Where a snapshot is: its watermark and the last resource it sent (users first, then groups,
/// each in `seq` order), or the group it stopped inside. Text: `{epoch}-{watermark}-{u|g}{seq}`,
/// then `m{member seq}` or `o{offset}` inside a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotCursor {
    pub watermark: Cursor,
    pub kind: ResourceKind,
    pub seq: i64,
    /// The previous page stopped inside the group at `seq`: its members after this position
    /// come first on the next page.
    pub inside: Option<MemberPosition>,
}

/// How far into a large group's members a snapshot has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberPosition {
    /// A live group: its members after this member's sequence number.
    Seq(i64),
    /// A group shown from its brake image: its members after the first `n`.
    Offset(usize),
}

impl SnapshotCursor {
    pub fn encode(&self) -> String {
        let k = match self.kind {
            ResourceKind::User => 'u',
            ResourceKind::Group => 'g',
        };
        let inside = match self.inside {
            None => String::new(),
            Some(MemberPosition::Seq(n)) => format!("m{n}"),
            Some(MemberPosition::Offset(n)) => format!("o{n}"),
        };
        format!("{}-{k}{}{inside}", self.watermark.encode(), self.seq)
    }

    pub fn parse(text: &str) -> std::result::Result<SnapshotCursor, CursorError> {
        const BAD: CursorError =
            CursorError::Invalid("the snapshot cursor is not one this server made");
        let number = |digits: &str| -> std::result::Result<i64, CursorError> {
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(BAD);
            }
            digits.parse().map_err(|_| BAD)
        };
        let (watermark, at) = text.rsplit_once('-').ok_or(BAD)?;
        let watermark = Cursor::parse(watermark).map_err(|_| BAD)?;
        let kind = match at.as_bytes().first() {
            Some(b'u') => ResourceKind::User,
            Some(b'g') => ResourceKind::Group,
            _ => return Err(BAD),
        };
        let at = &at[1..];
        let (seq, inside) = match at.find(['m', 'o']) {
            None => (number(at)?, None),
            // Only a group's members are ever split across pages.
            Some(_) if kind == ResourceKind::User => return Err(BAD),
            Some(i) => {
                let n = number(&at[i + 1..])?;
                let position = match at.as_bytes()[i] {
                    b'm' => MemberPosition::Seq(n),
                    _ => MemberPosition::Offset(usize::try_from(n).map_err(|_| BAD)?),
                };
                (number(&at[..i])?, Some(position))
            }
        };
        Ok(SnapshotCursor {
            watermark,
            kind,
            seq,
            inside,
        })
    }
}

/// One page of a snapshot: resources (a group with its members) and where the next starts.
#[derive(Debug, Clone)]
pub struct SnapshotPage {
    pub watermark: Cursor,
    pub resources: Vec<(Stored, Option<Vec<Member>>)>,
    pub next: Option<SnapshotCursor>,
    /// The first resource is the rest of the group the previous page stopped inside: its
    /// members add to those the previous page gave (docs/feed.md).
    pub continues: bool,
}

/// A page of the tenant's snapshot: from the start (None: the watermark is the latest change
/// now, read in the same transaction as the page) or after `cursor`. At most `count` resources
/// and `SNAPSHOT_MEMBER_BUDGET` group members; a group with more members than that is split
/// across consecutive pages, so a page's size (and the server's memory) is bounded whatever the
/// directory holds.
pub fn snapshot_page(
    conn: &Connection,
    tenant: &TenantId,
    cursor: Option<&str>,
    count: usize,
) -> Result<SnapshotPage> {
    snapshot_page_within(conn, tenant, cursor, count, SNAPSHOT_MEMBER_BUDGET)
}

/// `snapshot_page` with a member budget of `budget`.
pub(super) fn snapshot_page_within(
    conn: &Connection,
    tenant: &TenantId,
    cursor: Option<&str>,
    count: usize,
    budget: usize,
) -> Result<SnapshotPage> {
    let meta = meta(conn)?;
    let count = count.clamp(1, MAX_PAGE);
    let budget = budget.max(1);
    let (watermark, mut kind, mut after, inside) = match cursor {
        None | Some("") => (
            Cursor {
                epoch: meta.epoch.clone(),
                seq: meta.latest,
            },
            ResourceKind::User,
            0,
            None,
        ),
        Some(text) => {
            let c = SnapshotCursor::parse(text)?;
            check(&meta, &c.watermark.epoch, c.watermark.seq)?;
            (c.watermark, c.kind, c.seq, c.inside)
        }
    };
    let page = |resources, next, continues| SnapshotPage {
        watermark: watermark.clone(),
        resources,
        next,
        continues,
    };
    let inside_group = |seq, position| SnapshotCursor {
        watermark: watermark.clone(),
        kind: ResourceKind::Group,
        seq,
        inside: Some(position),
    };
    let mut out: Vec<Entry> = Vec::new();
    let mut members_sent = 0usize;
    let mut continues = false;
    if let Some(position) = inside {
        // The rest of the group the previous page stopped inside (gone since: nothing to add).
        let at = page_of(conn, tenant, ResourceKind::Group, after - 1, 1)?;
        if let Some((stored, image)) = at.into_iter().find(|(s, _)| s.seq == after) {
            continues = true;
            match take_members(conn, &stored, image, Some(position), budget)? {
                Taken::All(members) => {
                    members_sent = members.len();
                    out.push((stored, Some(members)));
                }
                Taken::Part(members, next) => {
                    let cursor = inside_group(stored.seq, next);
                    return Ok(page(vec![(stored, Some(members))], Some(cursor), true));
                }
            }
        }
    }
    let mut full = out.len() == count;
    while !full {
        let rows = page_of(conn, tenant, kind, after, count - out.len())?;
        let fetched = rows.len();
        for (stored, image) in rows {
            if kind == ResourceKind::Group {
                let room = budget.saturating_sub(members_sent);
                match take_members(conn, &stored, image, None, room)? {
                    Taken::All(members) => {
                        members_sent += members.len();
                        after = stored.seq;
                        out.push((stored, Some(members)));
                    }
                    // Not on this page: the next one starts with it.
                    Taken::Part(..) if !out.is_empty() => {
                        full = true;
                        break;
                    }
                    // Larger than a page: its first members here, the rest on the next.
                    Taken::Part(members, next) => {
                        let cursor = inside_group(stored.seq, next);
                        return Ok(page(vec![(stored, Some(members))], Some(cursor), continues));
                    }
                }
            } else {
                after = stored.seq;
                out.push((stored, None));
            }
        }
        if full || out.len() == count {
            break;
        }
        if fetched < count && kind == ResourceKind::User {
            // Users are done: groups next, from their start.
            kind = ResourceKind::Group;
            after = 0;
            continue;
        }
        // Groups are done: the snapshot is complete.
        return Ok(page(out, None, continues));
    }
    let next = SnapshotCursor {
        watermark: watermark.clone(),
        kind,
        seq: after,
        inside: None,
    };
    Ok(page(out, Some(next), continues))
}

/// A group's members as far as a page has room for them.
enum Taken {
    /// All of them (from the position asked).
    All(Vec<Member>),
    /// The first ones, and where the rest start.
    Part(Vec<Member>, MemberPosition),
}

/// A group's members from `from` (None: the first), at most `room` of them: from its brake image
/// when it is shown as last delivered, else live, one index seek on `members`' primary key.
/// A position of the other kind (the brake released or held the group between two pages) starts
/// over: members sent twice are harmless, since a consumer adds a continued group's members.
fn take_members(
    conn: &Connection,
    group: &Stored,
    image: Option<Vec<Member>>,
    from: Option<MemberPosition>,
    room: usize,
) -> Result<Taken> {
    if let Some(image) = image {
        let start = match from {
            Some(MemberPosition::Offset(n)) => n.min(image.len()),
            _ => 0,
        };
        let mut rest = image;
        rest.drain(..start);
        if rest.len() <= room {
            return Ok(Taken::All(rest));
        }
        rest.truncate(room);
        return Ok(Taken::Part(rest, MemberPosition::Offset(start + room)));
    }
    let start = match from {
        Some(MemberPosition::Seq(n)) => n,
        _ => 0,
    };
    let mut rows = members_after(conn, group.seq, start, room + 1)?;
    if rows.len() <= room {
        return Ok(Taken::All(rows.into_iter().map(|(_, m)| m).collect()));
    }
    rows.truncate(room);
    let last = rows.last().map_or(start, |(seq, _)| *seq);
    Ok(Taken::Part(
        rows.into_iter().map(|(_, m)| m).collect(),
        MemberPosition::Seq(last),
    ))
}

/// A group's members after the member `after` (sequence numbers), at most `n`, each with its
/// sequence number: the snapshot's slices of a large group.
fn members_after(
    conn: &Connection,
    group_seq: i64,
    after: i64,
    n: usize,
) -> Result<Vec<(i64, Member)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT m.member_seq, mr.id, mr.kind, COALESCE(mr.display_name, mr.user_name) \
         FROM members m JOIN resources mr ON mr.seq = m.member_seq \
         WHERE m.group_seq = ?1 AND m.member_seq > ?2 ORDER BY m.member_seq LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![group_seq, after, n as i64], |r| {
        Ok((
            r.get(0)?,
            Member {
                id: r.get(1)?,
                kind: resources::kind_from(&r.get::<_, String>(2)?),
                display: r.get(3)?,
            },
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// A snapshot entry: the resource, and a group's members when they come from its brake image.
type Entry = (Stored, Option<Vec<Member>>);

/// The tenant's resources of `kind` after `after` (seq order), at most `n`, in the delivered
/// view: a resource with held changes (a held-deleted one too) as it was last delivered.
fn page_of(
    conn: &Connection,
    tenant: &TenantId,
    kind: ResourceKind,
    after: i64,
    n: usize,
) -> Result<Vec<Entry>> {
    let rows = live_page_of(conn, tenant, kind, after, n)?;
    let images = match brake::any_images(conn, tenant)? {
        true => brake::images_after(conn, tenant, kind, after)?,
        false => Vec::new(),
    };
    if images.is_empty() {
        return Ok(rows.into_iter().map(|s| (s, None)).collect());
    }
    // Images up to the last live row fetched (beyond it, the live rows are not all here yet).
    let bound = match rows.len() == n {
        true => rows.last().map_or(i64::MAX, |s| s.seq),
        false => i64::MAX,
    };
    let shown: std::collections::HashSet<ResourceId> =
        images.iter().map(|i| i.stored.id.clone()).collect();
    let mut out: Vec<Entry> = rows
        .into_iter()
        .filter(|s| !shown.contains(&s.id))
        .map(|s| (s, None))
        .collect();
    out.extend(
        images
            .into_iter()
            .filter(|i| i.stored.seq <= bound)
            .map(|i| (i.stored, i.members.or_else(|| Some(Vec::new())))),
    );
    out.sort_by_key(|(s, _)| s.seq);
    out.truncate(n);
    if kind == ResourceKind::User {
        for entry in &mut out {
            entry.1 = None;
        }
    }
    Ok(out)
}

/// The tenant's live resources of `kind` after `after` (seq order), at most `n`.
fn live_page_of(
    conn: &Connection,
    tenant: &TenantId,
    kind: ResourceKind,
    after: i64,
    n: usize,
) -> Result<Vec<Stored>> {
    let kind = match kind {
        ResourceKind::User => "'User'",
        ResourceKind::Group => "'Group'",
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM resources r \
         WHERE r.tenant = (SELECT key FROM tenants WHERE id = ?1) AND r.kind = {kind} \
         AND r.seq > ?2 ORDER BY r.seq LIMIT {n}"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![tenant, after], resources::from_row)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(resources::to_stored(row?)?);
    }
    Ok(out)
}
