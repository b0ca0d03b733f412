//! Access to the assignment wizard's drafts, shared by the server functions and the preview
//! CSV route: a draft is reached by id alone, so the checks come in a fixed order.

use backend::identity::Permission;
use backend::jobs::drafts::{Draft, DraftId};

use super::AppState;
use super::auth::{CurrentUser, refuse};
use crate::error::AppError;

/// Whether the user may assign devices in some organization (admin or operator there).
pub fn may_assign_somewhere(user: &CurrentUser) -> bool {
    user.memberships
        .iter()
        .any(|m| m.role.allows(Permission::AssignDevices))
}

/// The draft `id` for `user`, checked in this order: the user may assign devices somewhere
/// (`Forbidden` otherwise, so helpdesk and viewers learn nothing about drafts); the draft is
/// theirs and not expired (`NotFound` otherwise, whoever else made it); and they may still
/// assign devices in its organization (`Forbidden`, e.g. after a role change).
pub async fn load_draft(state: &AppState, user: &CurrentUser, id: &str) -> Result<Draft, AppError> {
    if !may_assign_somewhere(user) {
        tracing::info!(user = %user.id, "assignment draft refused: no role may assign");
        return Err(refuse(AppError::Forbidden));
    }
    let not_found = || AppError::NotFound {
        what: "This assignment draft (drafts last a day and belong to whoever started them)"
            .to_owned(),
    };
    let id = DraftId::parse(id).ok_or_else(not_found)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let draft = match state.store.draft(id, user.id, now).await {
        Ok(draft) => draft,
        Err(backend::StoreError::NotFound { .. }) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    if !user.may(draft.org, Permission::AssignDevices) {
        tracing::info!(user = %user.id, org = %draft.org, "assignment draft refused: role changed");
        return Err(refuse(AppError::Forbidden));
    }
    Ok(draft)
}
