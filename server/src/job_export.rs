//! `GET /jobs/{id}/results.csv?org=…`: the result of every serial number of a job (step 6 of
//! the assignment wizard), for the record or a spreadsheet.
//!
//! Streams like the device export: 1000 results are read by serial (keyset), written and
//! dropped before the next are read; the first page is read before the response starts, so
//! an unknown job or a refused role is a plain 4xx, not a broken download.

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use backend::identity::roles::Permission;
use backend::jobs::{ItemFilter, ItemPage, JobError, JobId};
use backend::orgs::OrgId;

use app::ssr::AppState;
use app::ssr::auth::CurrentUser;

use crate::export::{csv_response, export_failed, org_param, push_row, url_pairs};

const PAGE: u32 = 1000;
const HEADER: &str = "serial_number,result,verified_at_apple,activity_id,reason\r\n";

pub async fn job_results_csv(
    State(state): State<AppState>,
    user: Option<Extension<CurrentUser>>,
    Path(job): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let Some(Extension(user)) = user else {
        return (StatusCode::UNAUTHORIZED, "Please sign in to continue.").into_response();
    };
    let Some(org) = org_param(&url_pairs(&raw.unwrap_or_default())) else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Parameter `org`: name the organization of the job.",
        )
            .into_response();
    };
    if !user.may(org, Permission::AssignDevices) {
        return (StatusCode::FORBIDDEN, "Your role does not allow this.").into_response();
    }
    let Some(job) = job.parse::<i64>().ok().map(JobId) else {
        return (StatusCode::NOT_FOUND, "This job was not found.").into_response();
    };
    let first = match read(&state, org, job, None).await {
        Ok(page) => page,
        Err(JobError::NotFound) => {
            return (StatusCode::NOT_FOUND, "This job was not found.").into_response();
        }
        Err(e) => return export_failed("job results export", &e),
    };
    let pages = futures::stream::unfold(
        (state, Some(first), true),
        move |(state, page, first)| async move {
            let page = page?;
            let mut out = String::with_capacity(64 * page.items.len() + HEADER.len());
            if first {
                out.push_str(HEADER);
            }
            for item in &page.items {
                push_row(
                    &mut out,
                    [
                        item.serial.as_str(),
                        item.outcome.as_str(),
                        if item.verified { "yes" } else { "no" },
                        item.activity_id.as_deref().unwrap_or(""),
                        // Last: free text, the only cell that may hold a comma.
                        item.reason.as_deref().unwrap_or(""),
                    ],
                );
            }
            let next = match page.next {
                None => None,
                Some(after) => match read(&state, org, job, Some(after)).await {
                    Ok(page) => Some(page),
                    Err(e) => {
                        // A truncated download rather than a silently short file.
                        tracing::error!(
                            error = &e as &dyn std::error::Error,
                            "job results export stopped"
                        );
                        return Some((
                            Err(std::io::Error::other("export stopped")),
                            (state, None, false),
                        ));
                    }
                },
            };
            Some((
                Ok::<_, std::io::Error>(Bytes::from(out)),
                (state, next, false),
            ))
        },
    );
    csv_response(
        &format!("orchard-job-{job}-results.csv"),
        // Fused: the compression layer polls once more after the end.
        Body::from_stream(futures::StreamExt::fuse(pages)),
    )
}

async fn read(
    state: &AppState,
    org: OrgId,
    job: JobId,
    after: Option<String>,
) -> Result<ItemPage, JobError> {
    let filter = ItemFilter {
        outcome: None,
        after,
        limit: PAGE,
    };
    backend::jobs::job_items(state.store.as_ref(), org, job, &filter).await
}
