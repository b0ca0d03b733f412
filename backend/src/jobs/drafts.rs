//! Wizard drafts: the state of one person's bulk assignment between its steps, kept in the
//! database so every step is a plain page (it works without JavaScript, survives a reload
//! and a restart) and the confirm step reads exactly what the preview showed.
//!
//! A draft holds the input as given (pasted text, a CSV file, a selection, or the serials a
//! device filter matched when the draft was made), the chosen CSV column, and the chosen
//! action. It belongs to the user who made it, in one organization: nobody else can read it
//! (the store answers `NotFound`), and it expires [`DRAFT_TTL_SECS`] after its last change.
//!
//! [`plan`] is what the confirm step calls: the action, the account to send with, the serials
//! to send and the skipped ones with their reasons.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::JobAction;
use super::input::{self, CsvColumn, InputError, ParsedInput};
use super::preview::{self, Preview};
use crate::accounts::ApiAccountId;
use crate::identity::UserId;
use crate::orgs::OrgId;
use crate::store::{Store, StoreError};

/// A draft lives this long after its last change.
pub const DRAFT_TTL_SECS: i64 = 24 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DraftId(pub Uuid);

impl DraftId {
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }

    /// A draft id from a URL; anything else is `None` (and so "not found").
    pub fn parse(text: &str) -> Option<Self> {
        Uuid::try_parse(text.trim()).ok().map(Self)
    }
}

impl fmt::Display for DraftId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where the devices of a draft came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DraftSource {
    /// Serial numbers pasted or typed, any separators.
    Paste,
    /// A CSV file (pasted, or read from a file by the browser).
    Csv,
    /// Rows selected on the Devices page.
    Selection,
    /// Every device a Devices filter matched when the draft was made.
    Filter,
}

impl DraftSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Paste => "paste",
            Self::Csv => "csv",
            Self::Selection => "selection",
            Self::Filter => "filter",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Paste, Self::Csv, Self::Selection, Self::Filter]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// The input of a draft, as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftInput {
    pub source: DraftSource,
    /// The text: pasted serials, the CSV file, or serials one per line (selection, filter).
    pub text: String,
    /// CSV: the column the person chose (1-based); `None` = detected.
    pub csv_column: Option<u32>,
    /// Where it came from, for people ("devices matching q=C02, family Mac", a file name).
    pub label: String,
}

/// The input read: its entries and, for CSV, the columns to choose from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadInput {
    pub parsed: ParsedInput,
    pub csv: Option<CsvLayout>,
}

/// A CSV input's layout, for the column chooser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvLayout {
    pub has_header: bool,
    pub columns: Vec<CsvColumn>,
    /// The column read (1-based).
    pub column: u32,
}

impl DraftInput {
    /// Reads the input (see [`super::input`]).
    pub fn read(&self) -> Result<ReadInput, InputError> {
        match self.source {
            DraftSource::Csv => {
                let csv = input::parse_csv(&self.text, self.csv_column)?;
                Ok(ReadInput {
                    parsed: csv.parsed,
                    csv: Some(CsvLayout {
                        has_header: csv.has_header,
                        columns: csv.columns,
                        column: csv.column,
                    }),
                })
            }
            DraftSource::Paste | DraftSource::Selection | DraftSource::Filter => Ok(ReadInput {
                parsed: input::parse_serials(&self.text)?,
                csv: None,
            }),
        }
    }
}

/// One person's wizard state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub id: DraftId,
    pub org: OrgId,
    pub created_by: UserId,
    pub created_at: i64,
    pub updated_at: i64,
    pub expires_at: i64,
    pub input: DraftInput,
    /// Chosen at step 2; `None` before.
    pub action: Option<JobAction>,
}

impl Draft {
    /// A new draft made by `user` at `now`.
    pub fn new(org: OrgId, user: UserId, input: DraftInput, now: i64) -> Self {
        Self {
            id: DraftId::random(),
            org,
            created_by: user,
            created_at: now,
            updated_at: now,
            expires_at: now + DRAFT_TTL_SECS,
            input,
            action: None,
        }
    }
}

/// What the confirm step hands to the runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub org: OrgId,
    pub action: JobAction,
    /// The API account to send with (`None` only when nothing is sendable).
    pub account: Option<ApiAccountId>,
    /// Serials to send, each once, in input order.
    pub to_send: Vec<String>,
    /// Skipped entries: `(serial or text as written, reason)`.
    pub skipped: Vec<(String, String)>,
    /// The preview they come from (counts for the summary).
    pub preview: Preview,
}

/// Why a draft cannot become a job as it stands.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("no action has been chosen yet")]
    NoAction,
    #[error("the input cannot be read: {0}")]
    Input(#[from] InputError),
    #[error("the action cannot be sent: {0}")]
    Action(String),
    #[error("no device would change")]
    NothingToSend,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The preview of a draft whose action is chosen, read from the mirror at `now`.
pub async fn preview(
    store: &dyn Store,
    draft: &Draft,
    now: i64,
) -> Result<(ReadInput, Option<Preview>), PlanError> {
    let read = draft.input.read()?;
    let preview = match &draft.action {
        Some(action) => Some(preview::build(store, draft.org, action, &read.parsed, now).await?),
        None => None,
    };
    Ok((read, preview))
}

/// The job a draft describes, for the confirm step: the mirror is read again at `now`, so
/// the plan reflects the latest sync (show [`Plan::preview`]'s counts when confirming).
pub async fn plan(store: &dyn Store, draft: &Draft, now: i64) -> Result<Plan, PlanError> {
    let (_, preview) = preview(store, draft, now).await?;
    let preview = preview.ok_or(PlanError::NoAction)?;
    if let Some(error) = &preview.action_error {
        return Err(PlanError::Action(error.clone()));
    }
    if !preview.sendable() {
        return Err(PlanError::NothingToSend);
    }
    Ok(Plan {
        org: draft.org,
        action: preview.action.clone(),
        account: preview.account,
        to_send: preview.to_send(),
        skipped: preview.skipped(),
        preview,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_round_trip_and_inputs_read_by_source() {
        for s in [
            DraftSource::Paste,
            DraftSource::Csv,
            DraftSource::Selection,
            DraftSource::Filter,
        ] {
            assert_eq!(DraftSource::parse(s.as_str()), Some(s));
        }
        let csv = DraftInput {
            source: DraftSource::Csv,
            text: "owner,serial\nAnn,C02XL0GSJGH5\n".into(),
            csv_column: None,
            label: "devices.csv".into(),
        };
        let read = csv.read().unwrap();
        assert_eq!(read.csv.as_ref().unwrap().column, 2);
        assert_eq!(read.parsed.serials().collect::<Vec<_>>(), ["C02XL0GSJGH5"]);
        let paste = DraftInput {
            source: DraftSource::Paste,
            ..csv
        };
        let read = paste.read().unwrap();
        assert!(read.csv.is_none());
        // "owner", "serial" and "Ann" are not serial numbers.
        assert_eq!(read.parsed.tally().malformed, 3, "{:?}", read.parsed);
    }

    #[test]
    fn a_new_draft_expires_a_day_later() {
        let input = DraftInput {
            source: DraftSource::Paste,
            text: "C02XL0GSJGH5".into(),
            csv_column: None,
            label: String::new(),
        };
        let d = Draft::new(OrgId(Uuid::nil()), UserId(Uuid::nil()), input, 100);
        assert_eq!(d.expires_at, 100 + DRAFT_TTL_SECS);
        assert_eq!(DraftId::parse(&d.id.to_string()), Some(d.id));
        assert_eq!(DraftId::parse("not-a-uuid"), None);
    }
}
