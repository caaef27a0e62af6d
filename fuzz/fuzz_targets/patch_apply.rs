//! PATCH bodies: `scim::patch::parse_request` on arbitrary JSON, then `scim::patch::apply` on a
//! fixed stored User and a fixed stored Group (see `fuzz_common`).
//!
//! Properties: no panic; a failing request leaves the document untouched (atomicity); a
//! successful one reports `changed` truthfully and leaves a document in stored form (passes
//! `resource::validate`, is a fixed point of `resource::normalise`, also via GET → PUT).
#![no_main]

use fuzz_common::{assert_stored_form, group_doc, user_doc, RESOURCE_TYPES};
use grouptalk_scim::scim::patch;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(req) = patch::parse_request(&body) else {
        return;
    };
    for (rt, fixture) in RESOURCE_TYPES.into_iter().zip([user_doc(), group_doc()]) {
        let mut doc = fixture.clone();
        match patch::apply(rt, &mut doc, &req) {
            Err(e) => assert_eq!(
                &doc, fixture,
                "failed PATCH on {} ({}) changed the document",
                rt.name, e.detail
            ),
            Ok(outcome) => {
                assert_eq!(
                    outcome.changed,
                    doc != *fixture,
                    "PATCH on {}: 'changed' is wrong",
                    rt.name
                );
                assert_stored_form(rt, &doc, &format!("PATCH on {}", rt.name));
                // The same request again, on the result: still no panic, still atomic.
                let before = doc.clone();
                if patch::apply(rt, &mut doc, &req).is_err() {
                    assert_eq!(
                        doc, before,
                        "failed second PATCH on {} changed the document",
                        rt.name
                    );
                }
            }
        }
    }
});
