//! Small value types every layer shares, so that a tenant id cannot be passed where a token id
//! is meant, a version is not a bare integer and a time is not a string until it is rendered.
//!
//! Each id keeps the text it has in the database and on the wire (`Display`), and binds to SQL
//! as that text (`ToSql`/`FromSql`), so typed ids cost nothing at run time.

use std::fmt;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn new(text: impl Into<String>) -> $name {
                $name(text.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::Borrowed(ValueRef::Text(self.0.as_bytes())))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                String::column_result(value).map($name)
            }
        }
    };
}

text_id!(
    /// A tenant's id (a UUID, `tenants.id`): what tokens name in their `tid` claim. Not its
    /// name (what administrators type) and not its key (the integer rows carry).
    TenantId
);

text_id!(
    /// A bearer token's id (`jti`, `tokens.id`). The token text itself is never stored.
    TokenId
);

text_id!(
    /// A user's or group's id (`resources.id`, `meta.id`): what the server assigned at create.
    /// An id taken from a request path is one too, whether or not such a resource exists.
    ResourceId
);

text_id!(
    /// An OAuth client's id (`clients.id`, the `client_id` Entra sends): not a secret.
    ClientId
);

text_id!(
    /// A client secret's id (`client_secrets.id`): names one secret of a client, for rotation
    /// and revocation, and is the part of the secret before its first `.`.
    SecretId
);

text_id!(
    /// A client's workload identity federation (`client_federations.id`): the JWKS, issuer,
    /// subject and audience its assertions are checked against. Access tokens issued on an
    /// assertion name it (`fid`), so removing the federation ends them.
    FederationId
);

/// What a credential may do. `scim`: read and write the tenant's directory over SCIM (what
/// Entra needs). `feed.read`: read the change feed (and GET SCIM resources), never write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Scim,
    FeedRead,
}

impl Scope {
    pub const ALL: [Scope; 2] = [Scope::Scim, Scope::FeedRead];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Scim => "scim",
            Scope::FeedRead => "feed.read",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// A set of scopes, written as OAuth does: space-separated names (`"scim feed.read"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Scopes {
    scim: bool,
    feed_read: bool,
}

impl Scopes {
    pub const SCIM: Scopes = Scopes {
        scim: true,
        feed_read: false,
    };

    pub fn contains(self, scope: Scope) -> bool {
        match scope {
            Scope::Scim => self.scim,
            Scope::FeedRead => self.feed_read,
        }
    }

    pub fn with(mut self, scope: Scope) -> Scopes {
        match scope {
            Scope::Scim => self.scim = true,
            Scope::FeedRead => self.feed_read = true,
        }
        self
    }

    pub fn is_empty(self) -> bool {
        !self.scim && !self.feed_read
    }

    /// The scopes in both sets.
    pub fn intersection(self, other: Scopes) -> Scopes {
        Scope::ALL
            .into_iter()
            .filter(|s| self.contains(*s) && other.contains(*s))
            .fold(Scopes::default(), Scopes::with)
    }

    /// Every scope of `self` is in `other`.
    pub fn is_subset(self, other: Scopes) -> bool {
        Scope::ALL
            .into_iter()
            .all(|s| !self.contains(s) || other.contains(s))
    }

    /// Space-separated names; None if one is unknown. Empty text is the empty set.
    pub fn parse(text: &str) -> Option<Scopes> {
        text.split_whitespace()
            .try_fold(Scopes::default(), |set, word| {
                Some(set.with(Scope::parse(word)?))
            })
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Scope::ALL
            .into_iter()
            .filter(|s| self.contains(*s))
            .map(Scope::as_str)
            .collect();
        f.write_str(&names.join(" "))
    }
}

/// A resource's version: `meta.version` and the `ETag` header render it as `W/"n"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version(pub i64);

impl Version {
    pub const FIRST: Version = Version(1);

    pub fn next(self) -> Version {
        Version(self.0 + 1)
    }

    /// The weak entity tag (RFC 7232 §2.3) of this version.
    pub fn etag(self) -> String {
        format!("W/\"{}\"", self.0)
    }
}

impl ToSql for Version {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        self.0.to_sql()
    }
}

impl FromSql for Version {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        i64::column_result(value).map(Version)
    }
}

/// A point in time, UTC, millisecond precision: stored and rendered as RFC 3339
/// (`2026-01-02T03:04:05.678Z`). Text in the database, so SQLite's date functions still apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    pub fn now() -> Timestamp {
        Timestamp::from(OffsetDateTime::now_utc())
    }

    pub fn parse(text: &str) -> Option<Timestamp> {
        OffsetDateTime::parse(text, &Rfc3339)
            .ok()
            .map(Timestamp::from)
    }

    pub fn to_rfc3339(self) -> String {
        self.0
            .format(&Rfc3339)
            .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
    }

    pub fn unix_seconds(self) -> i64 {
        self.0.unix_timestamp()
    }
}

impl From<OffsetDateTime> for Timestamp {
    /// Truncated to milliseconds, in UTC: what the database keeps.
    fn from(t: OffsetDateTime) -> Timestamp {
        let t = t.to_offset(time::UtcOffset::UTC);
        let ms = t.millisecond() as u32 * 1_000_000;
        Timestamp(t.replace_nanosecond(ms).unwrap_or(t))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl ToSql for Timestamp {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.to_rfc3339()))
    }
}

impl FromSql for Timestamp {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        Timestamp::parse(text)
            .ok_or_else(|| FromSqlError::Other(format!("not an RFC 3339 time: {text:?}").into()))
    }
}

/// Stored as its OAuth text (`tokens.scopes`, `clients.scopes`): `"scim feed.read"`.
impl ToSql for Scopes {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.to_string()))
    }
}

/// An unknown scope name in the database is an error, never a silently smaller set.
impl FromSql for Scopes {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        Scopes::parse(text)
            .ok_or_else(|| FromSqlError::Other(format!("unknown scope in {text:?}").into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_at_millisecond_precision_in_utc() {
        let t = Timestamp::parse("2026-03-04T05:06:07.891234+02:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-03-04T03:06:07.891Z");
        assert_eq!(Timestamp::parse(&t.to_rfc3339()), Some(t));
        assert!(Timestamp::parse("yesterday").is_none());
    }

    #[test]
    fn scopes_parse_and_print_as_oauth_writes_them() {
        let both = Scopes::parse("feed.read  scim").unwrap();
        assert_eq!(both.to_string(), "scim feed.read");
        assert!(Scopes::SCIM.is_subset(both) && !both.is_subset(Scopes::SCIM));
        assert_eq!(Scopes::parse(""), Some(Scopes::default()));
        assert_eq!(Scopes::parse("scim admin"), None);
    }

    #[test]
    fn versions_render_as_weak_etags() {
        assert_eq!(Version::FIRST.next().etag(), "W/\"2\"");
    }
}
