//! Server functions of the wizard's last steps and of the Jobs page: the confirmation
//! summary, starting a job, its live progress and per-serial results, cancel, and "retry
//! failed". Only users whose role allows `AssignDevices` in the organization reach them.
//!
//! Starting a job re-reads the mirror (the plan reflects the latest sync), writes the job
//! with all its chunks, then confirms it: nothing goes to Apple before that transaction.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use crate::error::AppError;
use crate::model::jobs::{ConfirmView, JobList, JobView, ResultPage};

/// What confirming the draft would do.
#[server(input = GetUrl, prefix = "/api")]
pub async fn get_confirmation(draft: String) -> Result<ConfirmView, AppError> {
    let (state, _, draft) = super::assign::ssr::my_draft(&draft).await?;
    let plan = ssr::plan(&state, &draft).await?;
    ssr::confirm_view(&state, &draft, &plan).await
}

/// Creates the job of a draft and starts it, then goes to its progress page. Above the
/// confirmation threshold `typed` must be the number of devices that will be sent.
#[server(prefix = "/api")]
pub async fn start_job(draft: String, #[server(default)] typed: String) -> Result<(), AppError> {
    use backend::jobs::NewJob;

    let (state, user, draft) = super::assign::ssr::my_draft(&draft).await?;
    let plan = ssr::plan(&state, &draft).await?;
    let to_send = plan.to_send.len() as u64;
    if to_send > state.config.jobs.confirm_threshold {
        let typed = typed.trim().replace([',', ' ', '\u{a0}'], "");
        if typed != to_send.to_string() {
            return Err(AppError::validation(
                "typed",
                format!("Type {to_send}, the number of devices that will change, to confirm."),
            ));
        }
    }
    let Some(account) = plan.account else {
        return Err(AppError::Conflict {
            message: "This organization has no active API account to send with.".to_owned(),
        });
    };
    let actor = crate::ssr::auth::actor();
    let id = backend::jobs::create_job(
        state.store.as_ref(),
        &actor,
        NewJob {
            org: draft.org,
            account,
            action: plan.action.clone(),
            skipped: ssr::distinct_skipped(&plan.to_send, plan.skipped),
            to_send: plan.to_send,
            retry_of: None,
            chunk_size: state.config.jobs.chunk_size,
        },
    )
    .await
    .map_err(ssr::job_error)?;
    state
        .jobs
        .confirm(&actor, draft.org, id)
        .await
        .map_err(ssr::job_error)?;
    if let Err(e) = state.store.delete_draft(draft.id, user.id).await {
        tracing::warn!(error = %e, "the confirmed draft could not be deleted; it expires");
    }
    leptos_axum::redirect(&format!("/jobs/{id}?org={}", draft.org));
    Ok(())
}

/// The organization's jobs, newest first, in pages of 50 (`before`: the last id shown).
#[server(input = GetUrl, prefix = "/api")]
pub async fn list_jobs(
    #[server(default)] org: Option<String>,
    #[server(default)] before: Option<i64>,
) -> Result<JobList, AppError> {
    use backend::identity::roles::Permission;
    use backend::jobs::JobId;

    const PAGE: u32 = 50;
    let (_, org) =
        super::devices::ssr::organization(org.as_deref(), Permission::AssignDevices).await?;
    let state = crate::ssr::state()?;
    let jobs = backend::jobs::list_jobs(state.store.as_ref(), org.id, before.map(JobId), PAGE)
        .await
        .map_err(ssr::job_error)?;
    let next = (jobs.len() == PAGE as usize)
        .then(|| jobs.last().map(|j| j.id.0))
        .flatten();
    let mut names = ssr::Names::new(&state, org.id).await?;
    let mut summaries = Vec::with_capacity(jobs.len());
    for job in &jobs {
        summaries.push(names.summary(job).await);
    }
    Ok(JobList {
        org: super::devices::ssr::org_ref(&org),
        jobs: summaries,
        next,
        now: super::devices::ssr::now(),
    })
}

/// A job's live progress.
#[server(input = GetUrl, prefix = "/api")]
pub async fn get_job(org: String, job: i64) -> Result<JobView, AppError> {
    use backend::identity::roles::Permission;
    use backend::jobs::JobId;

    let (_, org) = super::devices::ssr::organization(Some(&org), Permission::AssignDevices).await?;
    let state = crate::ssr::state()?;
    let store = state.store.as_ref();
    let p = backend::jobs::job_progress(store, org.id, JobId(job))
        .await
        .map_err(ssr::job_error)?;
    let retried_by = store
        .job_retries(JobId(job))
        .await?
        .into_iter()
        .map(|id| id.0)
        .collect();
    let mut names = ssr::Names::new(&state, org.id).await?;
    let apple_status = p.apple_status.as_ref().map(|s| match &p.apple_sub_status {
        Some(sub) => format!("{s} · {sub}"),
        None => s.clone(),
    });
    Ok(JobView {
        org: super::devices::ssr::org_ref(&org),
        job: names.summary(&p.job).await,
        chunks: u64::from(p.job.chunks),
        chunks_planned: u64::from(p.chunks_planned),
        chunks_submitted: u64::from(p.chunks_submitted + p.chunks_sending),
        chunks_completed: u64::from(p.chunks_completed),
        chunks_failed: u64::from(p.chunks_failed),
        chunks_cancelled: u64::from(p.chunks_cancelled),
        chunks_verifying: u64::from(p.chunks_verifying),
        waiting_for_budget: p.waiting_for_budget,
        next_slot_in_secs: p.next_slot_in_secs,
        apple_status,
        retried_by,
        now: super::devices::ssr::now(),
    })
}

/// A page of a job's per-serial results, by serial; `outcome` filters (`failed`, …).
#[server(input = GetUrl, prefix = "/api")]
pub async fn get_job_results(
    org: String,
    job: i64,
    #[server(default)] outcome: Option<String>,
    #[server(default)] after: Option<String>,
) -> Result<ResultPage, AppError> {
    use backend::identity::roles::Permission;
    use backend::jobs::{ItemFilter, JobId};

    use crate::model::jobs::ResultRow;

    let (_, org) = super::devices::ssr::organization(Some(&org), Permission::AssignDevices).await?;
    let state = crate::ssr::state()?;
    let filter = ItemFilter {
        outcome: ssr::outcome(outcome.as_deref())?,
        after: after.filter(|a| !a.is_empty()),
        limit: 200,
    };
    let page = backend::jobs::job_items(state.store.as_ref(), org.id, JobId(job), &filter)
        .await
        .map_err(ssr::job_error)?;
    Ok(ResultPage {
        rows: page
            .items
            .into_iter()
            .map(|i| ResultRow {
                serial: i.serial,
                outcome: i.outcome.as_str().to_owned(),
                reason: i.reason,
                verified: i.verified,
            })
            .collect(),
        next: page.next,
    })
}

/// Cancels a job: chunks not yet sent to Apple are not sent.
#[server(prefix = "/api")]
pub async fn cancel_job(org: String, job: i64) -> Result<(), AppError> {
    use backend::identity::roles::Permission;
    use backend::jobs::JobId;

    let (_, org) = super::devices::ssr::organization(Some(&org), Permission::AssignDevices).await?;
    let state = crate::ssr::state()?;
    state
        .jobs
        .cancel(&crate::ssr::auth::actor(), org.id, JobId(job))
        .await
        .map_err(ssr::job_error)?;
    Ok(())
}

/// Starts a new job for the failed devices of a finished job, linked to it, and goes to
/// its progress page.
#[server(prefix = "/api")]
pub async fn retry_failed(org: String, job: i64) -> Result<(), AppError> {
    use backend::identity::roles::Permission;
    use backend::jobs::JobId;

    let (_, org) = super::devices::ssr::organization(Some(&org), Permission::AssignDevices).await?;
    let state = crate::ssr::state()?;
    let actor = crate::ssr::auth::actor();
    let store = state.store.as_ref();
    let id = backend::jobs::retry_failed(store, &actor, org.id, JobId(job))
        .await
        .map_err(ssr::job_error)?;
    state
        .jobs
        .confirm(&actor, org.id, id)
        .await
        .map_err(ssr::job_error)?;
    leptos_axum::redirect(&format!("/jobs/{id}?org={}", org.id));
    Ok(())
}

#[cfg(feature = "ssr")]
pub(crate) mod ssr {
    use std::collections::{HashMap, HashSet};

    use backend::identity::UserId;
    use backend::jobs::drafts::{Draft, Plan, PlanError};
    use backend::jobs::{ItemOutcome, Job, JobAction, JobError};
    use backend::orgs::OrgId;

    use crate::api::assign::ssr::describe_action;
    use crate::api::devices::ssr::org_ref;
    use crate::error::AppError;
    use crate::model::jobs::{ConfirmView, CountLine, DeviceHistory, DeviceJob, JobSummary};
    use crate::ssr::AppState;

    /// The draft's plan, read from the mirror now; what stops it is said plainly.
    pub async fn plan(state: &AppState, draft: &Draft) -> Result<Plan, AppError> {
        let now = super::super::devices::ssr::now();
        backend::jobs::drafts::plan(state.store.as_ref(), draft, now)
            .await
            .map_err(|e| match e {
                PlanError::Store(e) => e.into(),
                PlanError::NoAction => AppError::Conflict {
                    message: "Choose what to do with the devices first (step 2).".to_owned(),
                },
                PlanError::NothingToSend => AppError::Conflict {
                    message: "No device would change: every entry is skipped (see the preview)."
                        .to_owned(),
                },
                other => crate::api::assign::ssr::plan_error(other),
            })
    }

    /// The skipped entries a job can record: one per serial, none that is also sent, none
    /// blank (a repeat of a serial is reported by the preview, not as a second result).
    pub fn distinct_skipped(
        to_send: &[String],
        skipped: Vec<(String, String)>,
    ) -> Vec<(String, String)> {
        let mut seen: HashSet<String> = to_send.iter().cloned().collect();
        skipped
            .into_iter()
            .filter(|(serial, _)| !serial.trim().is_empty() && seen.insert(serial.clone()))
            .collect()
    }

    pub async fn confirm_view(
        state: &AppState,
        draft: &Draft,
        plan: &Plan,
    ) -> Result<ConfirmView, AppError> {
        let org = state.store.organization(draft.org).await?;
        let names = service_names(state, org.id).await?;
        let chunk = u64::from(state.config.jobs.chunk_size.max(1));
        let to_send = plan.to_send.len() as u64;
        let groups = plan
            .preview
            .counts()
            .into_iter()
            .map(|(group, count)| CountLine {
                label: group.label(&plan.action).to_owned(),
                count: count as u64,
            })
            .collect();
        let moves = plan
            .preview
            .moves()
            .into_iter()
            .map(|(from, count)| CountLine {
                label: match from.and_then(|id| names.get(&id).cloned()) {
                    Some(name) => format!("Moving from {name}"),
                    None => "Not assigned to a service yet".to_owned(),
                },
                count: count as u64,
            })
            .collect();
        Ok(ConfirmView {
            org: org_ref(&org),
            draft: draft.id.to_string(),
            action: action_label(&plan.action, &names),
            to_send,
            skipped: plan.skipped.len() as u64,
            groups,
            moves,
            threshold: state.config.jobs.confirm_threshold,
            chunks: to_send.div_ceil(chunk),
        })
    }

    async fn service_names(
        state: &AppState,
        org: OrgId,
    ) -> Result<HashMap<String, String>, AppError> {
        Ok(state
            .store
            .service_names(org)
            .await?
            .into_iter()
            .map(|s| (s.id, s.name))
            .collect())
    }

    /// "Assign to Staff Macs", with the deadline for migrations.
    pub fn action_label(action: &JobAction, names: &HashMap<String, String>) -> String {
        let target = action
            .service_id()
            .map(|id| names.get(id).map_or(id, String::as_str));
        describe_action(action, target)
    }

    /// A device's history in Orchard: the last jobs that included it (newest first), with
    /// the device's result in each; `services` names the organization's services. Callers
    /// check that `user` may read the audit.
    pub async fn device_history(
        state: &AppState,
        user: &crate::ssr::auth::CurrentUser,
        org: OrgId,
        serial: &str,
        services: HashMap<String, String>,
    ) -> Result<DeviceHistory, AppError> {
        use backend::identity::roles::Permission;

        const SHOWN: u32 = 20;
        let history = backend::jobs::device_history(state.store.as_ref(), org, serial, SHOWN)
            .await
            .map_err(job_error)?;
        let mut names = Names::with_services(state, services);
        let mut jobs = Vec::with_capacity(history.len());
        for (job, item) in &history {
            jobs.push(DeviceJob {
                job: names.summary(job).await,
                outcome: item.outcome.as_str().to_owned(),
                reason: item.reason.clone(),
                verified: item.verified,
            });
        }
        Ok(DeviceHistory {
            jobs,
            may_open: user.may(org, Permission::AssignDevices),
            now: super::super::devices::ssr::now(),
        })
    }

    /// Service and user names for job summaries, looked up once per page.
    pub struct Names<'a> {
        state: &'a AppState,
        services: HashMap<String, String>,
        users: HashMap<uuid::Uuid, String>,
    }

    impl<'a> Names<'a> {
        pub async fn new(state: &'a AppState, org: OrgId) -> Result<Self, AppError> {
            Ok(Self::with_services(state, service_names(state, org).await?))
        }

        /// With the service names (id → name) already read.
        pub fn with_services(state: &'a AppState, services: HashMap<String, String>) -> Self {
            Self {
                state,
                services,
                users: HashMap::new(),
            }
        }

        async fn user(&mut self, id: Option<uuid::Uuid>) -> String {
            let Some(id) = id else {
                return "Orchard".to_owned();
            };
            if let Some(name) = self.users.get(&id) {
                return name.clone();
            }
            let name = match self.state.store.user(UserId(id)).await {
                Ok(user) => user.display_name,
                Err(_) => "A deleted user".to_owned(),
            };
            self.users.insert(id, name.clone());
            name
        }

        pub async fn summary(&mut self, job: &Job) -> JobSummary {
            JobSummary {
                id: job.id.0,
                action: action_label(&job.action, &self.services),
                status: job.status.as_str().to_owned(),
                created_by: self.user(job.created_by).await,
                created_at: job.created_at,
                finished_at: job.finished_at,
                devices: job.counts.devices,
                succeeded: job.counts.succeeded,
                failed: job.counts.failed,
                skipped: job.counts.skipped,
                pending: job.counts.pending,
                retry_of: job.retry_of.map(|id| id.0),
            }
        }
    }

    /// The `outcome` URL parameter.
    pub fn outcome(text: Option<&str>) -> Result<Option<ItemOutcome>, AppError> {
        match text.map(str::trim).filter(|t| !t.is_empty() && *t != "all") {
            None => Ok(None),
            Some(t) => ItemOutcome::parse(t).map(Some).ok_or_else(|| {
                AppError::validation(
                    "outcome",
                    format!(
                        "\"{t}\" is not an outcome; use succeeded, failed, skipped or pending."
                    ),
                )
            }),
        }
    }

    /// A job error as the page shows it.
    pub fn job_error(error: JobError) -> AppError {
        match error {
            JobError::NotFound => AppError::NotFound {
                what: "This job".to_owned(),
            },
            JobError::Store(e) => e.into(),
            JobError::Audit(e) => {
                crate::ssr::internal(&format!("the audit log could not record the job: {e}"))
            }
            other => AppError::Conflict {
                message: format!("{}.", capitalize(&other.to_string())),
            },
        }
    }

    fn capitalize(text: &str) -> String {
        let mut chars = text.chars();
        match chars.next() {
            Some(c) => c.to_uppercase().chain(chars).collect(),
            None => String::new(),
        }
    }
}
