//! Orchard's own audit log, for instance administrators: newest first, in keyset pages,
//! filtered by actor, action and date, with the verdict of the hash chain.
//!
//! Entries carry no organization, so an organization's admin would see what happened in
//! other organizations; the page is therefore for instance administrators only, even
//! though organization admins hold `Permission::ViewOrchardAudit`. Per-organization
//! views belong to the audit timeline, which merges Apple's events.
//!
//! The chain verdict recomputes every hash on each call (reads in batches of 1000): linear
//! in the log's length, acceptable for an administrator's page, and the first thing to
//! cache (by the head `seq`) once logs grow to millions of entries.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use crate::error::AppError;
use crate::model::users::AuditLogPage;

/// One page of entries older than `before` (a `seq`), matching the filters: `actor` is a
/// username or `system`, `action` a dotted action name, `since`/`until` days
/// (`YYYY-MM-DD`, both included, UTC).
#[server(input = GetUrl, prefix = "/api")]
pub async fn list_audit(
    #[server(default)] actor: Option<String>,
    #[server(default)] action: Option<String>,
    #[server(default)] since: Option<String>,
    #[server(default)] until: Option<String>,
    #[server(default)] before: Option<i64>,
) -> Result<AuditLogPage, AppError> {
    use std::collections::HashMap;

    use backend::audit::{AuditAction, AuditError, AuditFilter, AuditPage};

    use crate::api::support::rfc3339;
    use crate::model::users::{AUDIT_PAGE_SIZE, AuditEntryView, ChainStatus};

    crate::ssr::auth::require_instance_admin()?;
    let state = crate::ssr::state()?;
    let store = state.store.as_ref();
    let usernames: HashMap<String, String> = store
        .list_users()
        .await?
        .into_iter()
        .map(|u| (u.id.to_string(), u.username))
        .collect();
    let actor = nonblank(actor).map(|name| {
        usernames
            .iter()
            .find(|(_, username)| username.eq_ignore_ascii_case(&name))
            .map_or(name, |(id, _)| id.clone())
    });
    let filter = AuditFilter {
        actor,
        action: nonblank(action),
        subject: None,
        since: day_start("since", since, 0)?,
        until: day_start("until", until, 1)?,
    };
    // One entry more than shown tells whether an older page exists.
    let page = AuditPage {
        before,
        limit: AUDIT_PAGE_SIZE + 1,
    };
    let mut entries = backend::audit::list(store, &filter, page)
        .await
        .map_err(|_| crate::ssr::internal("audit list failed"))?;
    let more = entries.len() > AUDIT_PAGE_SIZE as usize;
    entries.truncate(AUDIT_PAGE_SIZE as usize);
    let chain = match backend::audit::verify_chain(store).await {
        Ok(()) => ChainStatus::Intact,
        Err(AuditError::TamperedAt { seq }) => ChainStatus::BrokenAt { seq },
        Err(AuditError::Store(e)) => return Err(e.into()),
    };
    let name_of = |id: &str| usernames.get(id).cloned();
    Ok(AuditLogPage {
        next_before: more.then(|| entries.last().map(|e| e.seq)).flatten(),
        entries: entries
            .into_iter()
            .map(|e| AuditEntryView {
                seq: e.seq,
                at: rfc3339(e.at),
                actor: name_of(&e.actor).unwrap_or_else(|| e.actor.clone()),
                client_addr: e.client_addr,
                action: e.action,
                subject_label: e
                    .subject
                    .strip_prefix("user:")
                    .and_then(name_of)
                    .map_or_else(|| e.subject.clone(), |name| format!("user {name}")),
                subject: e.subject,
                details: e.details,
            })
            .collect(),
        chain,
        actions: AuditAction::ALL
            .iter()
            .map(|a| a.as_str().to_owned())
            .collect(),
    })
}

#[cfg(feature = "ssr")]
fn nonblank(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// Midnight UTC at the start of `day` plus `offset_days`; blank means no bound.
#[cfg(feature = "ssr")]
fn day_start(
    field: &str,
    day: Option<String>,
    offset_days: i64,
) -> Result<Option<time::OffsetDateTime>, AppError> {
    let Some(day) = nonblank(day) else {
        return Ok(None);
    };
    let date = time::Date::parse(
        &day,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| AppError::validation(field, "Use a date such as 2026-11-26."))?;
    let start = date.midnight().assume_utc() + time::Duration::days(offset_days);
    Ok(Some(start))
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;

    #[test]
    fn an_until_day_includes_that_whole_day() {
        let since = day_start("since", Some("2026-11-26".into()), 0)
            .unwrap()
            .unwrap();
        let until = day_start("until", Some("2026-11-26".into()), 1)
            .unwrap()
            .unwrap();
        assert_eq!(until - since, time::Duration::days(1));
        assert_eq!(day_start("since", Some("  ".into()), 0), Ok(None));
    }

    #[test]
    fn a_malformed_day_names_its_field() {
        let err = day_start("until", Some("26/11/2026".into()), 1).unwrap_err();
        assert!(err.field_message("until").is_some());
    }
}
