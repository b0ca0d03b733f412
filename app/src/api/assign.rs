//! The bulk-assignment wizard's server functions, steps 1 to 3: choose the devices (pasted
//! serials, CSV, a Devices selection or filter), choose the action, preview.
//!
//! Every function needs `AssignDevices` (admins and operators). Functions about a draft take
//! only its id: the draft names its organization, and only its creator may use it (anyone
//! else gets "not found", after the role check, so helpdesk and viewers are refused outright).
//! The wizard's state lives in the draft, so each step is a plain page and form.

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

use crate::error::AppError;
use crate::model::assign::{ActionChoices, AssignStart, DraftInputView, PreviewView};

/// Step 1's page data: the organization, serials handed over from the Devices page (`serials`,
/// comma or line separated) and the devices of a Devices filter (`filter`, the device list's
/// query string), when given.
#[server(input = GetUrl, prefix = "/api")]
pub async fn get_assign_start(
    #[server(default)] org: Option<String>,
    #[server(default)] serials: String,
    #[server(default)] filter: Option<String>,
) -> Result<AssignStart, AppError> {
    use backend::identity::roles::Permission;

    use crate::api::devices::ssr as devices;

    let (_, org) = devices::organization(org.as_deref(), Permission::AssignDevices).await?;
    let state = crate::ssr::state()?;
    let filter = match filter {
        Some(query) => Some(ssr::filter_offer(&state, org.id, &query).await?),
        None => None,
    };
    let prefill = serials
        .split([',', '\n', ' ', ';', '\t'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    Ok(AssignStart {
        org: devices::org_ref(&org),
        prefill,
        filter,
        freshness: devices::freshness(&state, org.id).await?,
    })
}

/// Step 1: stores the devices as given in a new draft (or `draft`'s), then goes on to the
/// action, or back to step 1 of the draft when the input cannot be read (a CSV fault, no
/// serial column), with the text kept. `format` is `detect` (default), `serials` or `csv`;
/// `column` a CSV column number; `origin` `selection` when the Devices page handed it over.
#[server(prefix = "/api")]
pub async fn save_devices(
    #[server(default)] org: String,
    #[server(default)] draft: Option<String>,
    #[server(default)] text: String,
    #[server(default)] format: String,
    #[server(default)] column: Option<String>,
    #[server(default)] origin: Option<String>,
) -> Result<String, AppError> {
    use backend::identity::roles::Permission;
    use backend::jobs::drafts::{Draft, DraftInput, DraftSource};
    use backend::jobs::input::{self, InputError};

    let state = crate::ssr::state()?;
    let now = crate::api::devices::ssr::now();
    // Access first, whatever the input: the draft's creator, or a new draft's organization.
    let (user, existing, org) = match draft.as_deref().filter(|d| !d.trim().is_empty()) {
        Some(id) => {
            let user = crate::ssr::auth::require_user()?;
            let draft = crate::ssr::assign::load_draft(&state, &user, id).await?;
            let org = draft.org;
            (user, Some(draft), org)
        }
        None => {
            let org = crate::ssr::auth::parse_org(&org)?;
            let user = crate::ssr::auth::require_permission(org, Permission::AssignDevices)?;
            (user, None, org)
        }
    };
    if text.trim().is_empty() {
        return Err(AppError::validation(
            "text",
            "Paste serial numbers or a CSV file: the box is empty.",
        ));
    }
    if text.len() > input::MAX_INPUT_BYTES {
        let error = InputError::TooLarge {
            size: format!("{:.1} MB", text.len() as f64 / 1_000_000.0),
        };
        return Err(AppError::validation(
            "text",
            crate::ssr::sentence(&error.to_string()),
        ));
    }
    let csv = match format.as_str() {
        "csv" => true,
        "serials" => false,
        _ => input::looks_like_csv(&text),
    };
    let source = match (csv, origin.as_deref()) {
        (true, _) => DraftSource::Csv,
        (false, Some("selection")) => DraftSource::Selection,
        (false, _) => DraftSource::Paste,
    };
    let csv_column = column
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| {
            c.parse::<u32>()
                .map_err(|_| AppError::validation("column", "Choose a column from the list."))
        })
        .transpose()?
        .filter(|_| csv);
    let label = match source {
        DraftSource::Csv => "CSV".to_owned(),
        DraftSource::Selection => "Devices selected on the Devices page".to_owned(),
        _ => "Pasted serial numbers".to_owned(),
    };
    let new_input = DraftInput {
        source,
        text,
        csv_column,
        label,
    };
    let readable = new_input.read().is_ok();
    let id = match existing {
        Some(draft) => {
            state
                .store
                .update_draft_input(draft.id, user.id, &new_input, now)
                .await?
                .id
        }
        None => {
            let draft = Draft::new(org, user.id, new_input, now);
            state.store.create_draft(&draft).await?;
            draft.id
        }
    };
    let next = if readable {
        format!("/assign/{id}/action")
    } else {
        format!("/assign/{id}")
    };
    leptos_axum::redirect(&next);
    Ok(id.to_string())
}

/// Step 1 from a Devices filter: takes every device the filter (`filter`, the device list's
/// query string) matches now, up to one run's limit, into a new draft; goes on to the action.
#[server(prefix = "/api")]
pub async fn take_filtered_devices(org: String, filter: String) -> Result<String, AppError> {
    use backend::identity::roles::Permission;
    use backend::jobs::drafts::{Draft, DraftInput, DraftSource};

    let org = crate::ssr::auth::parse_org(&org)?;
    let user = crate::ssr::auth::require_permission(org, Permission::AssignDevices)?;
    let state = crate::ssr::state()?;
    let (serials, description) = ssr::filtered_serials(&state, org, &filter).await?;
    let draft = Draft::new(
        org,
        user.id,
        DraftInput {
            source: DraftSource::Filter,
            text: serials.join("\n"),
            csv_column: None,
            label: format!("Devices matching {description}"),
        },
        crate::api::devices::ssr::now(),
    );
    state.store.create_draft(&draft).await?;
    leptos_axum::redirect(&format!("/assign/{}/action", draft.id));
    Ok(draft.id.to_string())
}

/// Step 1 of an existing draft: its input, how it reads, and the CSV columns to choose from.
#[server(input = GetUrl, prefix = "/api")]
pub async fn get_draft_input(draft: String) -> Result<DraftInputView, AppError> {
    use backend::jobs::drafts::DraftSource;

    use crate::model::assign::ColumnChoice;

    let (state, _, draft) = ssr::my_draft(&draft).await?;
    let org = state.store.organization(draft.org).await?;
    let choices = |columns: &[backend::jobs::input::CsvColumn]| -> Vec<ColumnChoice> {
        columns
            .iter()
            .map(|col| ColumnChoice {
                number: col.number,
                label: col.label(),
            })
            .collect()
    };
    let (summary, error, columns, column) = match draft.input.read() {
        Ok(read) => {
            let csv = read.csv.as_ref();
            (
                Some(ssr::summary(&draft.input, &read)),
                None,
                csv.map(|c| choices(&c.columns)).unwrap_or_default(),
                csv.map(|c| c.column),
            )
        }
        Err(e) => {
            // The columns can still be offered when the file reads but no column was found.
            let columns = backend::jobs::input::csv_rows(&draft.input.text)
                .ok()
                .filter(|_| draft.input.source == DraftSource::Csv)
                .map(|rows| choices(&backend::jobs::input::csv_columns(&rows).1))
                .unwrap_or_default();
            (
                None,
                Some(crate::ssr::sentence(&e.to_string())),
                columns,
                draft.input.csv_column,
            )
        }
    };
    Ok(DraftInputView {
        draft: draft.id.to_string(),
        org: crate::api::devices::ssr::org_ref(&org),
        format: match draft.input.source {
            DraftSource::Csv => "csv",
            _ => "serials",
        }
        .to_owned(),
        text: draft.input.text,
        label: draft.input.label,
        columns,
        column,
        summary,
        error,
    })
}

/// Step 2's page data: the input's counts, the organization's services, the actions valid
/// for it, and the action chosen so far.
#[server(input = GetUrl, prefix = "/api")]
pub async fn get_action_choices(draft: String) -> Result<ActionChoices, AppError> {
    use backend::jobs::preview::deadline_days;

    use crate::model::assign::{ChosenAction, ServiceOption};

    let (state, _, draft) = ssr::my_draft(&draft).await?;
    let org = state.store.organization(draft.org).await?;
    let store = state.store.as_ref();
    let (input, input_error, migration) = match draft.input.read() {
        Ok(read) => {
            let serials: Vec<String> = read.parsed.serials().map(str::to_owned).collect();
            let migration = ssr::migration_known(&state, draft.org, &serials).await?;
            (ssr::summary(&draft.input, &read), None, migration)
        }
        Err(e) => (
            Default::default(),
            Some(crate::ssr::sentence(&e.to_string())),
            false,
        ),
    };
    let services = store
        .services(draft.org)
        .await?
        .into_iter()
        .filter(|s| s.absent_since.is_none())
        .map(|s| ServiceOption {
            id: s.id,
            name: s.name,
            device_count: s.device_count,
        })
        .collect();
    let chosen = draft
        .action
        .as_ref()
        .map(|a| ChosenAction {
            kind: a.kind().to_owned(),
            service: a.service_id().map(str::to_owned),
            deadline: a.deadline().map(|d| d.date().to_string()),
        })
        .unwrap_or_default();
    let now = crate::api::devices::ssr::now();
    let (min, max) = deadline_days(now);
    Ok(ActionChoices {
        draft: draft.id.to_string(),
        org: crate::api::devices::ssr::org_ref(&org),
        input,
        input_error,
        services,
        migration: migration || chosen.kind.contains("migration"),
        chosen,
        deadline_min: min.to_string(),
        deadline_max: max.to_string(),
    })
}

/// Step 2: sets the draft's action, then goes on to the preview. `kind` is one of
/// `JobAction::kind`'s names; `service` a service id (assign, unassign, assign with a
/// migration deadline); `deadline` a `YYYY-MM-DD` day (the migration actions that have one).
#[server(prefix = "/api")]
pub async fn choose_action(
    draft: String,
    #[server(default)] kind: String,
    #[server(default)] service: Option<String>,
    #[server(default)] deadline: Option<String>,
) -> Result<(), AppError> {
    use backend::jobs::preview::check_action;

    let (state, user, draft) = ssr::my_draft(&draft).await?;
    let now = crate::api::devices::ssr::now();
    let action = ssr::action_from_form(&kind, service.as_deref(), deadline.as_deref())?;
    let services = state.store.services(draft.org).await?;
    check_action(&action, &services, now)
        .map_err(|e| AppError::validation(e.field, crate::ssr::sentence(&e.message)))?;
    state
        .store
        .set_draft_action(draft.id, user.id, &action, now)
        .await?;
    leptos_axum::redirect(&format!("/assign/{}/preview", draft.id));
    Ok(())
}

/// Step 3: the preview of the draft, computed from the mirror now: counts per group, moves
/// per service, and one page (`page`, 1-based) of the entries, of one `group` when given.
#[server(input = GetUrl, prefix = "/api")]
pub async fn get_preview(
    draft: String,
    #[server(default)] group: Option<String>,
    #[server(default)] page: Option<u32>,
) -> Result<PreviewView, AppError> {
    let (state, _, draft) = ssr::my_draft(&draft).await?;
    ssr::preview_view(&state, &draft, group.as_deref(), page.unwrap_or(1)).await
}

#[cfg(feature = "ssr")]
pub(crate) mod ssr {
    use backend::jobs::JobAction;
    use backend::jobs::drafts::{Draft, DraftInput, ReadInput};
    use backend::jobs::input::MAX_ENTRIES;
    use backend::jobs::preview::{self, Group, deadline_of_day};
    use backend::mirror::search::{DeviceCursor, DeviceQuery, ServiceFilter};
    use backend::orgs::OrgId;

    use crate::api::devices::ssr as devices;
    use crate::error::AppError;
    use crate::model::assign::{
        FilterOffer, GroupCount, InputSummary, MoveCount, PREVIEW_PAGE, PreviewLine, PreviewView,
    };
    use crate::ssr::AppState;
    use crate::ssr::auth::CurrentUser;

    /// Rows read per page while resolving a filter.
    const FILTER_PAGE: u32 = 500;

    /// The state, the signed-in user and their draft `id` (see `crate::ssr::assign`).
    pub async fn my_draft(id: &str) -> Result<(AppState, CurrentUser, Draft), AppError> {
        let state = crate::ssr::state()?;
        let user = crate::ssr::auth::require_user()?;
        let draft = crate::ssr::assign::load_draft(&state, &user, id).await?;
        Ok((state, user, draft))
    }

    pub fn summary(input: &DraftInput, read: &ReadInput) -> InputSummary {
        let t = read.parsed.tally();
        let source = match (&read.csv, input.source) {
            (Some(csv), _) => {
                let column = csv
                    .columns
                    .iter()
                    .find(|c| c.number == csv.column)
                    .map(|c| c.label())
                    .unwrap_or_else(|| format!("Column {}", csv.column));
                format!("CSV, {}", column.to_lowercase_first())
            }
            (None, _) => input.label.clone(),
        };
        InputSummary {
            entries: t.entries() as u64,
            serials: t.serials as u64,
            duplicates: t.duplicates as u64,
            malformed: t.malformed as u64,
            source,
        }
    }

    trait LowerFirst {
        fn to_lowercase_first(&self) -> String;
    }

    impl LowerFirst for String {
        fn to_lowercase_first(&self) -> String {
            let mut chars = self.chars();
            chars
                .next()
                .map(|c| c.to_lowercase().chain(chars).collect())
                .unwrap_or_default()
        }
    }

    /// Whether the mirror knows migration fields for some of `serials` (or, without
    /// serials, for nothing).
    pub async fn migration_known(
        state: &AppState,
        org: OrgId,
        serials: &[String],
    ) -> Result<bool, AppError> {
        let sample = &serials[..serials.len().min(preview::LOOKUP_CHUNK)];
        let facts = state.store.devices_by_serials(org, sample).await?;
        Ok(preview::migration_known(&facts))
    }

    /// The device list's query from its query string, for a whole-filter read.
    fn filter_query(query: &str) -> Result<DeviceQuery, AppError> {
        let mut q = devices::device_query(query)?;
        q.after = None;
        q.limit = FILTER_PAGE;
        Ok(q)
    }

    /// A filter in words, with service ids named.
    async fn describe(state: &AppState, org: OrgId, q: &DeviceQuery) -> Result<String, AppError> {
        let services = state.store.service_names(org).await?;
        let mut parts = Vec::new();
        for (name, value) in q.to_params() {
            parts.push(match name {
                "q" => format!("search “{value}”"),
                "family" => format!("family {value}"),
                "status" => format!("status {value}"),
                "service" => match &q.filters.service {
                    Some(ServiceFilter::None) => "no service".to_owned(),
                    _ => format!(
                        "service {}",
                        services
                            .iter()
                            .find(|s| s.id == value)
                            .map_or(value.clone(), |s| s.name.clone())
                    ),
                },
                "source" => format!("purchase source {value}"),
                "added_from" => format!("added from {value}"),
                "added_to" => format!("added until {value}"),
                "absent" => "including released devices".to_owned(),
                "model" => format!("model {value}"),
                _ => continue,
            });
        }
        Ok(if parts.is_empty() {
            "no filter (every device)".to_owned()
        } else {
            parts.join(", ")
        })
    }

    pub async fn filter_offer(
        state: &AppState,
        org: OrgId,
        query: &str,
    ) -> Result<FilterOffer, AppError> {
        let q = filter_query(query)?;
        let mut first = q.clone();
        first.limit = 1;
        let total = state
            .index
            .search(state.store.as_ref(), org, &first)
            .await?
            .total;
        Ok(FilterOffer {
            query: query.trim_start_matches('?').to_owned(),
            description: describe(state, org, &q).await?,
            total,
            too_many: total > MAX_ENTRIES as u64,
        })
    }

    /// Every serial the filter matches now (keyset pages), and the filter in words.
    pub async fn filtered_serials(
        state: &AppState,
        org: OrgId,
        query: &str,
    ) -> Result<(Vec<String>, String), AppError> {
        let mut q = filter_query(query)?;
        let description = describe(state, org, &q).await?;
        let mut serials = Vec::new();
        loop {
            let page = state.index.search(state.store.as_ref(), org, &q).await?;
            if page.total > MAX_ENTRIES as u64 {
                return Err(AppError::validation(
                    "filter",
                    format!(
                        "The filter matches {} devices; one run takes at most {MAX_ENTRIES}. \
                         Narrow the filter on the Devices page.",
                        page.total
                    ),
                ));
            }
            serials.extend(page.devices.into_iter().map(|d| d.serial));
            match page.next.as_deref().and_then(DeviceCursor::decode) {
                Some(next) => q.after = Some(next),
                None => break,
            }
        }
        if serials.is_empty() {
            return Err(AppError::validation(
                "filter",
                "The filter matches no device now.",
            ));
        }
        Ok((serials, description))
    }

    /// The action named by step 2's form fields.
    pub fn action_from_form(
        kind: &str,
        service: Option<&str>,
        deadline: Option<&str>,
    ) -> Result<JobAction, AppError> {
        let service = || {
            service
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| {
                    AppError::validation("service", "Choose a device management service.")
                })
        };
        let deadline = || {
            let text = deadline.map(str::trim).unwrap_or_default();
            if text.is_empty() {
                return Err(AppError::validation(
                    "deadline",
                    "Choose the migration deadline.",
                ));
            }
            time::Date::parse(
                text,
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .map(deadline_of_day)
            .map_err(|_| {
                AppError::validation(
                    "deadline",
                    format!("“{text}” is not a date like 2026-03-31."),
                )
            })
        };
        Ok(match kind {
            "assign" => JobAction::Assign {
                service_id: service()?,
            },
            "unassign" => JobAction::Unassign {
                service_id: service()?,
            },
            "assign_with_migration_deadline" => JobAction::AssignWithMigrationDeadline {
                service_id: service()?,
                deadline: deadline()?,
            },
            "update_migration_deadline" => JobAction::UpdateMigrationDeadline {
                deadline: deadline()?,
            },
            "cancel_migration" => JobAction::CancelMigration,
            _ => {
                return Err(AppError::validation(
                    "kind",
                    "Choose what should happen to the devices.",
                ));
            }
        })
    }

    /// The action in words.
    pub fn describe_action(action: &JobAction, target: Option<&str>) -> String {
        let target = target.unwrap_or("the service");
        match action {
            JobAction::Assign { .. } => format!("Assign to {target}"),
            JobAction::Unassign { .. } => format!("Unassign from {target}"),
            JobAction::AssignWithMigrationDeadline { deadline, .. } => format!(
                "Assign to {target} and migrate without erase by {}",
                deadline.date()
            ),
            JobAction::UpdateMigrationDeadline { deadline } => {
                format!("Move the migration deadline to {}", deadline.date())
            }
            JobAction::CancelMigration => "Cancel the migration".to_owned(),
        }
    }

    pub async fn preview_view(
        state: &AppState,
        draft: &Draft,
        group: Option<&str>,
        page: u32,
    ) -> Result<PreviewView, AppError> {
        let now = devices::now();
        let (read, preview) = backend::jobs::drafts::preview(state.store.as_ref(), draft, now)
            .await
            .map_err(plan_error)?;
        let Some(preview) = preview else {
            return Err(AppError::Conflict {
                message: "Choose the action first.".to_owned(),
            });
        };
        let group = group
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(|g| Group::parse(g).ok_or_else(|| AppError::validation("group", "No such group.")))
            .transpose()?;
        let listed: Vec<_> = preview
            .rows
            .iter()
            .filter(|r| group.is_none_or(|g| r.group == g))
            .collect();
        let pages = (listed.len() as u32).div_ceil(PREVIEW_PAGE).max(1);
        let page = page.clamp(1, pages);
        let rows = listed
            .iter()
            .skip(((page - 1) * PREVIEW_PAGE) as usize)
            .take(PREVIEW_PAGE as usize)
            .map(|r| PreviewLine {
                line: r.position.line,
                column: r.position.column,
                input: r.input.clone(),
                serial: r.serial.clone(),
                group: r.group.as_str().to_owned(),
                label: r.group.label(&preview.action).to_owned(),
                sends: r.group.sends(),
                detail: r.detail.clone(),
            })
            .collect();
        let to_send = preview.rows.iter().filter(|r| r.group.sends()).count() as u64;
        let org = state.store.organization(draft.org).await?;
        Ok(PreviewView {
            draft: draft.id.to_string(),
            org: devices::org_ref(&org),
            action: describe_action(&preview.action, preview.target_name.as_deref()),
            input: summary(&draft.input, &read),
            counts: preview
                .counts()
                .into_iter()
                .map(|(g, n)| GroupCount {
                    key: g.as_str().to_owned(),
                    label: g.label(&preview.action).to_owned(),
                    count: n as u64,
                    sends: g.sends(),
                })
                .collect(),
            moves: preview
                .moves()
                .into_iter()
                .map(|(from, count)| MoveCount {
                    from: from.unwrap_or_else(|| "a service not synced yet".to_owned()),
                    count: count as u64,
                })
                .collect(),
            to_send,
            skipped: preview.rows.len() as u64 - to_send,
            action_error: preview.action_error.as_deref().map(crate::ssr::sentence),
            sendable: preview.sendable(),
            rows,
            group: group.map(|g| g.as_str().to_owned()),
            page,
            pages,
            listed: listed.len() as u64,
            freshness: devices::freshness(state, draft.org).await?,
        })
    }

    /// A draft that cannot be previewed: its input cannot be read, or the store failed.
    pub fn plan_error(e: backend::jobs::drafts::PlanError) -> AppError {
        use backend::jobs::drafts::PlanError;
        match e {
            PlanError::Store(e) => e.into(),
            PlanError::Input(e) => AppError::Conflict {
                message: format!(
                    "The devices cannot be read: {}",
                    crate::ssr::sentence(&e.to_string())
                ),
            },
            other => AppError::Conflict {
                message: crate::ssr::sentence(&other.to_string()),
            },
        }
    }
}
