//! Wire types of the assignment wizard's last steps (confirm, progress, results) and of the
//! Jobs page. Times are Unix seconds; outcomes and statuses travel as their stored names.

use serde::{Deserialize, Serialize};

use super::devices::OrgRef;

/// One line of a summary: a group of devices and how many are in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountLine {
    pub label: String,
    pub count: u64,
}

/// What the confirm step shows: exactly what will change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmView {
    pub org: OrgRef,
    pub draft: String,
    /// "Assign to Staff Macs", "Unassign from Lab iPads", …
    pub action: String,
    /// Devices that will be sent to Apple.
    pub to_send: u64,
    /// Devices left out, with Orchard's reason.
    pub skipped: u64,
    /// The preview's groups with their counts (sent and skipped).
    pub groups: Vec<CountLine>,
    /// "From Lab iPads: 40", "Not assigned yet: 60" for moves.
    pub moves: Vec<CountLine>,
    /// Above this many devices the user types the number to confirm.
    pub threshold: u64,
    /// How many activities (Apple POSTs) the job needs.
    pub chunks: u64,
}

impl ConfirmView {
    /// Whether the number of devices must be typed to confirm.
    pub fn needs_typed_count(&self) -> bool {
        self.to_send > self.threshold
    }
}

/// A job in a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSummary {
    pub id: i64,
    /// "Assign to Staff Macs", …
    pub action: String,
    /// The stored status name (`planned`, `running`, `waiting`, `completed`, …).
    pub status: String,
    /// Who started it (display name), or "Orchard".
    pub created_by: String,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    pub devices: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub skipped: u64,
    pub pending: u64,
    /// The job whose failures this one retries.
    pub retry_of: Option<i64>,
}

impl JobSummary {
    /// Whether nothing more will happen to the job.
    pub fn is_finished(&self) -> bool {
        matches!(
            self.status.as_str(),
            "cancelled" | "completed" | "completed_with_failures" | "failed"
        )
    }
}

/// The Jobs page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobList {
    pub org: OrgRef,
    pub jobs: Vec<JobSummary>,
    /// `before` of the next (older) page.
    pub next: Option<i64>,
    pub now: i64,
}

/// A job's live progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobView {
    pub org: OrgRef,
    pub job: JobSummary,
    pub chunks: u64,
    pub chunks_planned: u64,
    pub chunks_submitted: u64,
    pub chunks_completed: u64,
    pub chunks_failed: u64,
    pub chunks_cancelled: u64,
    /// Chunks Apple completed whose new assignment is still being checked.
    pub chunks_verifying: u64,
    pub waiting_for_budget: bool,
    /// Seconds until the next POST may go, while waiting.
    pub next_slot_in_secs: Option<u64>,
    /// Apple's status of the latest activity ("IN_PROGRESS · PROCESSING").
    pub apple_status: Option<String>,
    /// Jobs retrying this one's failures.
    pub retried_by: Vec<i64>,
    pub now: i64,
}

/// One serial number's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultRow {
    pub serial: String,
    /// `pending`, `succeeded`, `failed`, `skipped`.
    pub outcome: String,
    pub reason: Option<String>,
    /// The new assignment was seen at Apple afterwards.
    pub verified: bool,
}

/// A job that included one device, and what happened to the device there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceJob {
    pub job: JobSummary,
    /// The device's stored outcome (`pending`, `succeeded`, `failed`, `skipped`).
    pub outcome: String,
    pub reason: Option<String>,
    pub verified: bool,
}

/// A device's history in Orchard (device detail page).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceHistory {
    pub jobs: Vec<DeviceJob>,
    /// Whether the viewer may open the jobs (admins and operators).
    pub may_open: bool,
    pub now: i64,
}

/// A page of per-serial results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultPage {
    pub rows: Vec<ResultRow>,
    /// `after` of the next page.
    pub next: Option<String>,
}

/// The label of a stored job status.
pub fn status_label(status: &str) -> &'static str {
    match status {
        "planned" => "Waiting to start",
        "running" => "Running",
        "waiting" => "Waiting for Apple's request budget",
        "cancelling" => "Cancelling",
        "cancelled" => "Cancelled",
        "completed" => "Completed",
        "completed_with_failures" => "Completed with failures",
        "failed" => "Failed",
        _ => "Unknown",
    }
}

/// The label of a stored item outcome.
pub fn outcome_label(outcome: &str) -> &'static str {
    match outcome {
        "pending" => "Pending",
        "succeeded" => "Succeeded",
        "failed" => "Failed",
        "skipped" => "Skipped",
        _ => "Unknown",
    }
}
