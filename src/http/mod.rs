//! HTTP: a thin shell around the protocol. Bytes in → `scim` calls → statuses and headers out.
//! Statuses and headers live only here.

pub mod admin;
pub mod auth;
pub mod client;
pub mod errors;
pub mod feed;
pub mod list;
pub mod oauth;
pub mod paging;
pub mod resources;
pub mod response;
pub mod router;
pub mod server;
