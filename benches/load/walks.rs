//! Phase `walk_cursor`: pages of 100 users from random depths of an RFC 9865 cursor walk
//! (docs/pagination.md), next to phase `walk`, which pages by a random `startIndex`. Cursors are
//! the server's own (signed, bound to the tenant): one walk of the whole directory with
//! `count=1000` collects a position every thousand users first, and is timed itself.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::client::{MakeRequest, Req, Target};
use crate::{spread, BASE};

/// Every position of a cursor walk (each page's `nextCursor`, plus the empty first-page
/// cursor), and how long the whole walk took.
pub struct Positions {
    pub cursors: Vec<String>,
    pub users: u64,
    pub seconds: f64,
}

/// Walk `/Users` by cursor from the first page to the last, 1000 at a time. Checks that the
/// walk saw as many users as the first page's `totalResults`.
pub async fn positions(scim: &Target) -> Result<Positions> {
    let started = Instant::now();
    let mut conn = scim.connect().await?;
    let mut cursors = vec![String::new()];
    let (mut users, mut total) = (0u64, None);
    loop {
        let cursor = cursors.last().context("no cursor")?;
        let path = format!("{BASE}/Users?cursor={cursor}&count=1000&attributes=id");
        let (status, body) = scim.send(&mut conn, &Req::get(path)).await?;
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if status != 200 {
            bail!(
                "cursor walk: {status} after {users} users: {}",
                String::from_utf8_lossy(&body)
            );
        }
        users += v["itemsPerPage"].as_u64().context("no itemsPerPage")?;
        total.get_or_insert(v["totalResults"].as_u64().context("no totalResults")?);
        match v["nextCursor"].as_str() {
            Some(next) => cursors.push(next.to_string()),
            None => break,
        }
    }
    if Some(users) != total {
        bail!("cursor walk saw {users} users of {total:?}");
    }
    Ok(Positions {
        cursors,
        users,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Request `n`: 100 full users from a random one of the positions.
pub fn walk_cursor(positions: &Positions) -> MakeRequest {
    let cursors = Arc::new(positions.cursors.clone());
    Arc::new(move |n| {
        let cursor = &cursors[spread(n, cursors.len())];
        Req::get(format!("{BASE}/Users?cursor={cursor}&count=100"))
    })
}
