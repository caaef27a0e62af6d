//! SCIM_User_Pagination_Test and SCIM_Group_Pagination_Test: at least 11 resources (the
//! missing ones created by 5 parallel POSTs, as the template does), then pages of 5 by
//! `startIndex`; what was created is deleted again.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde_json::{json, Value};

use super::groups::group_body;
use super::users::{delete, user_body};
use super::{
    id_of, short_id, Check, Transport, PAGE_SIZE, PAGINATION_MINIMUM, PARALLEL_CREATES, TEST_DOMAIN,
};

/// Make sure at least 11 resources exist (creating the rest with 5 parallel POSTs), then page
/// through `startIndex`/`count=5`: every page 200 with the `startIndex` asked for, at least two
/// pages. Deletes what it created.
fn pagination(
    t: &dyn Transport,
    name: &'static str,
    endpoint: &str,
    body: &(dyn Fn() -> Value + Sync),
) -> Check {
    let first = format!("{endpoint}?startIndex=1&count={PAGE_SIZE}");
    let total = match t.scim("GET", &first, None) {
        Ok(r) => r.body["totalResults"].as_u64().unwrap_or(0),
        Err(e) => return Check::fail(name, e),
    };
    let wanted = PAGINATION_MINIMUM.saturating_sub(total) as usize;
    let created = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..PARALLEL_CREATES {
            s.spawn(|| {
                while next.fetch_add(1, Ordering::SeqCst) < wanted {
                    if let Ok(r) = t.scim("POST", endpoint, Some(&body())) {
                        let id = id_of(&r);
                        if !id.is_empty() {
                            created.lock().unwrap_or_else(|e| e.into_inner()).push(id);
                        }
                    }
                }
            });
        }
    });
    let created = created.into_inner().unwrap_or_else(|e| e.into_inner());
    let result = pages(t, endpoint);
    std::thread::scope(|s| {
        for chunk in created.chunks(created.len().div_ceil(PARALLEL_CREATES).max(1)) {
            s.spawn(move || chunk.iter().for_each(|id| delete(t, endpoint, id)));
        }
    });
    let made = format!("created {} of {wanted} needed", created.len());
    match result {
        Ok(n) => Check::pass(
            name,
            format!("{n} pages, startIndex echoed on each; {made}"),
        ),
        Err(e) => Check::fail(name, format!("{e}; {made}")),
    }
}

/// Follow the template's page loop (at most 10 pages); the number of pages, or what failed.
fn pages(t: &dyn Transport, endpoint: &str) -> Result<usize, String> {
    let mut url = format!("{endpoint}?startIndex=1&count={PAGE_SIZE}");
    let mut count = 0;
    let mut failed = Vec::new();
    while count < 10 && !url.is_empty() {
        let r = t.scim("GET", &url, None)?;
        let expected = count * PAGE_SIZE + 1;
        let start = r.body["startIndex"].as_u64().unwrap_or(0) as usize;
        if r.status != 200 || start != expected {
            failed.push(format!(
                "page {count}: HTTP {}, startIndex {start} (want {expected})",
                r.status
            ));
        }
        count += 1;
        let len = r.body["Resources"].as_array().map_or(0, Vec::len);
        let total = r.body["totalResults"].as_u64().unwrap_or(0) as usize;
        let start = r.body["startIndex"].as_u64().unwrap_or(1) as usize;
        url = if len > 0 && start + len <= total {
            format!("{endpoint}?startIndex={}&count={PAGE_SIZE}", start + len)
        } else {
            String::new()
        };
    }
    if !failed.is_empty() {
        return Err(failed.join("; "));
    }
    if count < 2 {
        return Err(format!("only {count} page(s)"));
    }
    Ok(count)
}

/// SCIM_User_Pagination_Test, with `paguser…` users.
pub fn user_pagination(t: &dyn Transport) -> Check {
    pagination(t, "SCIM_User_Pagination_Test", "/Users", &|| {
        let id = short_id();
        let mut b = user_body(&format!("paguser{id}@{TEST_DOMAIN}"));
        b["displayName"] = json!(format!("PagUser {id}"));
        b
    })
}

/// SCIM_Group_Pagination_Test, with `PagGroup …` groups.
pub fn group_pagination(t: &dyn Transport) -> Check {
    pagination(t, "SCIM_Group_Pagination_Test", "/Groups", &|| {
        group_body(&format!("PagGroup {}", short_id()))
    })
}
