//! Wire types of the bulk-assignment wizard's first steps: choose devices, choose the
//! action, preview. Labels and reasons are worded on the server; the browser shows them.

use serde::{Deserialize, Serialize};

use super::devices::{Freshness, OrgRef};

/// `/assign`: where step 1 starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignStart {
    pub org: OrgRef,
    /// Serial numbers handed over from the Devices page, one per line.
    pub prefill: String,
    /// Every device matching a Devices filter, offered as the input.
    pub filter: Option<FilterOffer>,
    pub freshness: Freshness,
}

/// A Devices filter whose matching devices can be taken as the input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterOffer {
    /// The device list's query string (`q=…&family=…`).
    pub query: String,
    /// The filter in words ("search “C02”, family Mac").
    pub description: String,
    /// Devices it matches now.
    pub total: u64,
    /// More than one run takes.
    pub too_many: bool,
}

/// A CSV column to choose from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnChoice {
    /// 1-based.
    pub number: u32,
    pub label: String,
}

/// What the input holds, in counts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InputSummary {
    pub entries: u64,
    pub serials: u64,
    pub duplicates: u64,
    pub malformed: u64,
    /// Where the input came from ("Pasted serial numbers", "CSV, column 2 (Serial)").
    pub source: String,
}

/// `/assign/:draft`: step 1 again, for a draft (change the devices, choose a CSV column).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftInputView {
    pub draft: String,
    pub org: OrgRef,
    /// `serials` or `csv`.
    pub format: String,
    pub text: String,
    pub label: String,
    /// CSV: the columns and the one read.
    pub columns: Vec<ColumnChoice>,
    pub column: Option<u32>,
    /// When the input can be read.
    pub summary: Option<InputSummary>,
    /// Why the input cannot be read, when it cannot.
    pub error: Option<String>,
}

/// A device management service to choose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceOption {
    pub id: String,
    pub name: String,
    pub device_count: u64,
}

/// The action chosen so far, as the form's fields.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ChosenAction {
    /// `assign`, `unassign`, `assign_with_migration_deadline`, `update_migration_deadline`,
    /// `cancel_migration`.
    pub kind: String,
    pub service: Option<String>,
    /// `YYYY-MM-DD`.
    pub deadline: Option<String>,
}

/// `/assign/:draft/action`: step 2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionChoices {
    pub draft: String,
    pub org: OrgRef,
    pub input: InputSummary,
    /// Why the input cannot be read (then step 1 must be fixed first).
    pub input_error: Option<String>,
    pub services: Vec<ServiceOption>,
    /// The migration actions are offered (the mirror knows migration fields).
    pub migration: bool,
    pub chosen: ChosenAction,
    /// Bounds of the migration deadline, `YYYY-MM-DD`.
    pub deadline_min: String,
    pub deadline_max: String,
}

/// One group's count in the preview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupCount {
    /// Stable name (`move`, `not_in_org`, …), used in URLs and test ids.
    pub key: String,
    pub label: String,
    pub count: u64,
    /// Entries of this group are sent to Apple.
    pub sends: bool,
}

/// Devices moving from one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveCount {
    pub from: String,
    pub count: u64,
}

/// One entry of the preview list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewLine {
    pub line: u32,
    pub column: u32,
    pub input: String,
    pub serial: Option<String>,
    pub group: String,
    pub label: String,
    pub sends: bool,
    pub detail: String,
}

/// `/assign/:draft/preview`: step 3.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewView {
    pub draft: String,
    pub org: OrgRef,
    /// The action in words ("Assign to Intune").
    pub action: String,
    pub input: InputSummary,
    pub counts: Vec<GroupCount>,
    pub moves: Vec<MoveCount>,
    pub to_send: u64,
    pub skipped: u64,
    /// Why the action cannot be sent as it stands.
    pub action_error: Option<String>,
    /// The confirm step may go ahead.
    pub sendable: bool,
    /// This page of the list (of `group` when set).
    pub rows: Vec<PreviewLine>,
    pub group: Option<String>,
    /// 1-based.
    pub page: u32,
    pub pages: u32,
    /// Entries in the list being paged.
    pub listed: u64,
    pub freshness: Freshness,
}

/// Entries per page of the preview list.
pub const PREVIEW_PAGE: u32 = 100;
