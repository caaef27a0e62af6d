//! `filter` query parameters: `scim::filter::parse` on arbitrary text.
//!
//! Properties: no panic; every accepted filter prints canonically and parses back to the same
//! AST (`parse(&f.to_string()) == Ok(f)`, and printing is then a fixed point); in-memory
//! evaluation on the fixture User/Group and compiling to SQL never panic.
#![no_main]

use fuzz_common::{group_doc, user_doc, RESOURCE_TYPES};
use grouptalk_scim::scim::filter;
use grouptalk_scim::store::query;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(f) = filter::parse(text) else {
        return;
    };
    let printed = f.to_string();
    match filter::parse(&printed) {
        Ok(back) => {
            assert_eq!(back, f, "round trip changed the AST\n input: {text:?}\n printed: {printed:?}");
            assert_eq!(back.to_string(), printed, "printing is not canonical for {text:?}");
        }
        Err(e) => panic!(
            "printed filter does not parse back\n input: {text:?}\n printed: {printed:?}\n error: {}",
            e.detail
        ),
    }
    for (rt, doc) in RESOURCE_TYPES.into_iter().zip([user_doc(), group_doc()]) {
        let _ = filter::matches(&f, rt, doc);
        let _ = query::compile(&f, rt, &grouptalk_scim::domain::TenantId::new("tenant"));
    }
});
