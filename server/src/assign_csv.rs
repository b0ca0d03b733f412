//! `GET /assign/{draft}/preview.csv`: the assignment wizard's preview of a draft, every entry
//! with what would happen to it, as CSV (cells written and defused as the device export does).
//!
//! Access is the wizard's: signed in (401), allowed to assign devices somewhere (403), the
//! draft is the caller's and not expired (404), and the caller may still assign devices in its
//! organization (403). The preview is computed from the mirror when asked, like the page.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use backend::jobs::drafts;

use app::error::AppError;
use app::ssr::AppState;
use app::ssr::auth::CurrentUser;

use crate::export::{csv_response, export_failed, push_row};

const HEADER: [&str; 9] = [
    "line",
    "column",
    "input",
    "serial_number",
    "result",
    "group",
    "reason",
    "current_service",
    "target_service",
];

pub async fn preview_csv(
    State(state): State<AppState>,
    user: Option<Extension<CurrentUser>>,
    Path(draft): Path<String>,
) -> Response {
    let Some(Extension(user)) = user else {
        return refusal(&AppError::Unauthenticated);
    };
    let draft = match app::ssr::assign::load_draft(&state, &user, &draft).await {
        Ok(draft) => draft,
        Err(e) => return refusal(&e),
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let preview = match drafts::preview(state.store.as_ref(), &draft, now).await {
        Ok((_, Some(preview))) => preview,
        Ok((_, None)) => {
            return (StatusCode::CONFLICT, "Choose the action first.").into_response();
        }
        Err(drafts::PlanError::Store(e)) => return export_failed("preview export", &e),
        Err(e) => return (StatusCode::CONFLICT, e.to_string()).into_response(),
    };
    let mut out = String::with_capacity(64 * (preview.rows.len() + 1));
    push_row(&mut out, HEADER);
    let target = preview.target_name.clone().unwrap_or_default();
    for row in &preview.rows {
        let cells = [
            row.position.line.to_string(),
            row.position.column.to_string(),
            row.input.clone(),
            row.serial.clone().unwrap_or_default(),
            if row.group.sends() { "send" } else { "skip" }.to_owned(),
            row.group.as_str().to_owned(),
            row.detail.clone(),
            row.service_name
                .clone()
                .or_else(|| row.service_id.clone())
                .unwrap_or_default(),
            target.clone(),
        ];
        push_row(&mut out, cells.iter().map(String::as_str));
    }
    csv_response(
        &format!("assignment-preview-{}.csv", &draft.id.to_string()[..8]),
        out.into(),
    )
}

fn refusal(error: &AppError) -> Response {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, error.to_string()).into_response()
}
