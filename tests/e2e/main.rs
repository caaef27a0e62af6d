#![allow(clippy::unwrap_used, clippy::expect_used)]
//! End-to-end tests: each test starts the real binary (see `harness`) and checks what a client
//! sees — status, headers, bodies — and what the CLI prints.

mod attacks;
mod auth;
mod brake;
mod cli;
mod clients;
mod crash;
mod cursor_paging;
mod dashboard;
mod discovery;
mod entra;
mod faults;
mod feed;
mod gallery;
mod groups;
mod harness;
mod history;
mod oauth;
mod oauth_federation;
mod ops;
mod trash;
mod users;
