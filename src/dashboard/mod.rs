//! The administrator's dashboard as HTML: pure functions from the store's read-outs (and the
//! time "now", passed in) to a `String`. No I/O, no SQL, no hyper: `http::admin` reads the store,
//! calls these and sets the headers (CSP, Host check, Basic auth live there).
//!
//! Every value that came from outside (Entra's userNames, displayNames, paths, details, labels)
//! goes through `html::text`/`html::attr` — the one escaper, unit-tested — and the page carries no
//! script at all; its one stylesheet is `style.css`, compiled into the binary.

pub mod chart;
pub mod html;
pub mod view;

/// The stylesheet served at `/style.css` (the page's only other resource).
pub const STYLESHEET: &str = include_str!("style.css");
