//! PATCH `path`s and bare attribute paths: `scim::filter::parse_patch_path`,
//! `scim::path::AttrPath::parse`, plus what else reads a user-supplied attribute path
//! (`attributes`/`excludedAttributes` projection, `sortBy` → SQL expression).
//!
//! Properties: no panic (also when an accepted projection is applied to a rendered resource);
//! accepted paths print and parse back to the same value; resolving them
//! against the User and Group schemas never panics.
#![no_main]

use fuzz_common::{group_doc, render, user_doc, RESOURCE_TYPES};
use grouptalk_scim::scim::filter;
use grouptalk_scim::scim::path::AttrPath;
use grouptalk_scim::scim::render::Projection;
use grouptalk_scim::store::query;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = filter::parse_patch_path(text) {
        let printed = p.to_string();
        match filter::parse_patch_path(&printed) {
            Ok(back) => assert_eq!(
                back, p,
                "PATCH path round trip changed the value\n input: {text:?}\n printed: {printed:?}"
            ),
            Err(e) => panic!(
                "printed PATCH path does not parse back\n input: {text:?}\n printed: {printed:?}\n error: {}",
                e.detail
            ),
        }
        for rt in RESOURCE_TYPES {
            let _ = p.attr.resolve(rt);
        }
    }
    if let Ok(a) = AttrPath::parse(text) {
        let printed = a.to_string();
        match AttrPath::parse(&printed) {
            Ok(back) => assert_eq!(
                back, a,
                "attribute path round trip changed the value\n input: {text:?}\n printed: {printed:?}"
            ),
            Err(e) => panic!(
                "printed attribute path does not parse back\n input: {text:?}\n printed: {printed:?}\n error: {}",
                e.detail
            ),
        }
        for rt in RESOURCE_TYPES {
            let _ = a.resolve(rt);
            let _ = query::sort_expression(&a, rt);
        }
    }
    for (rt, doc) in RESOURCE_TYPES.into_iter().zip([user_doc(), group_doc()]) {
        for projection in [
            Projection::parse(rt, Some(text), None),
            Projection::parse(rt, None, Some(text)),
        ] {
            if let Ok(projection) = projection {
                let _ = projection.wants(rt, "members");
                let mut rendered = render(rt, doc);
                projection.apply(rt, &mut rendered);
            }
        }
    }
});
