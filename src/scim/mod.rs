//! The SCIM protocol (RFC 7643/7644) as pure code: schema table, attribute paths, filters,
//! PATCH, body normalisation, rendering and discovery. No I/O, no SQL, no HTTP types here:
//! values in, values or `ScimError` out.

pub mod diff;
pub mod discovery;
pub mod error;
pub mod filter;
pub mod list;
pub mod patch;
pub mod path;
pub mod render;
pub mod resource;
pub mod schema;
