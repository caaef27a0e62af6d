//! Request body decoding: arbitrary bytes → `serde_json::from_slice` (as `http::router` does) →
//! `scim::resource::normalise` for User and Group (POST/PUT), `scim::patch::parse_request`
//! (PATCH) and `scim::list::ListParams::from_search_body` (POST /.search).
//!
//! Properties: no panic; an accepted POST/PUT body yields a document in stored form (passes
//! `validate`, normalising it again — directly or as rendered by GET — gives the same document).
#![no_main]

use fuzz_common::{assert_stored_form, RESOURCE_TYPES};
use grouptalk_scim::scim::list::ListParams;
use grouptalk_scim::scim::{patch, resource};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    for rt in RESOURCE_TYPES {
        if let Ok(n) = resource::normalise(rt, &body) {
            assert_stored_form(rt, &n.doc, &format!("POST {}", rt.name));
        }
        if let Ok(params) = ListParams::from_search_body(&body) {
            let _ = params.parse(rt);
        }
    }
    let _ = patch::parse_request(&body);
});
