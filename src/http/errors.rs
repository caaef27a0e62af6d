//! Where the store's domain errors become SCIM errors (RFC 7644 §3.12): the only place that
//! decides which status and `scimType` a not-found, a conflict or a full disk is answered with.
//! Internal causes are logged here and never sent.

use crate::scim::error::ScimError;
use crate::store::feed::CursorError;
use crate::store::StoreError;

pub fn scim_error(e: StoreError) -> ScimError {
    match e {
        StoreError::NotFound { .. } => ScimError::not_found(e.to_string()),
        StoreError::Conflict { .. } => ScimError::uniqueness(e.to_string()),
        StoreError::VersionMismatch { current } => ScimError::precondition_failed(format!(
            "If-Match does not match the current version {}",
            current.etag()
        )),
        StoreError::Invalid(why) => ScimError::invalid_value(why.to_string()),
        StoreError::Cursor(CursorError::Invalid(why)) => ScimError::invalid_cursor(why),
        StoreError::Cursor(CursorError::Expired(why)) => ScimError::expired_cursor(why),
        StoreError::Rejected(e) => e,
        StoreError::ReadBudget => ScimError::too_many(
            "The query ran past its time budget (limits.read_budget_secs); narrow the filter or \
             page with a smaller count",
        ),
        StoreError::Busy => ScimError::unavailable("The directory is busy; retry in a few seconds"),
        // A 503 about a write always means that nothing was changed.
        StoreError::Expired | StoreError::OverBudget { .. } | StoreError::RolledBack => {
            ScimError::unavailable(format!("{e}; retry later"))
        }
        StoreError::Full => {
            tracing::error!("database or disk full: writes are refused until space is freed");
            ScimError::insufficient_storage(
                "The directory has no space left for this change; retry later",
            )
        }
        other => {
            tracing::error!(error = %other, "storage failure");
            ScimError::internal()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Version;
    use crate::scim::error::ScimType;
    use crate::scim::schema::ResourceKind;
    use crate::store::Invalid;

    #[test]
    fn domain_errors_map_to_their_scim_status_and_type() {
        let cases = [
            (
                StoreError::NotFound {
                    kind: ResourceKind::User,
                    id: "u1".into(),
                },
                404,
                None,
            ),
            (
                StoreError::Conflict {
                    attribute: "userName",
                    value: "a".into(),
                },
                409,
                Some(ScimType::Uniqueness),
            ),
            (
                StoreError::VersionMismatch {
                    current: Version(2),
                },
                412,
                None,
            ),
            (
                StoreError::Invalid(Invalid::SelfMembership),
                400,
                Some(ScimType::InvalidValue),
            ),
            (
                StoreError::Cursor(CursorError::Invalid("x")),
                400,
                Some(ScimType::InvalidCursor),
            ),
            (
                StoreError::Cursor(CursorError::Expired("x")),
                410,
                Some(ScimType::ExpiredCursor),
            ),
            (StoreError::Busy, 503, None),
            (StoreError::Expired, 503, None),
            (StoreError::OverBudget { budget_ms: 5000 }, 503, None),
            (StoreError::RolledBack, 503, None),
            (StoreError::Full, 507, None),
            (StoreError::WriterGone, 500, None),
        ];
        for (error, status, scim_type) in cases {
            let e = scim_error(error);
            assert_eq!((e.status, e.scim_type), (status, scim_type), "{}", e.detail);
        }
    }
}
