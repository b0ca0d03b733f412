//! Wire types of the device pages: the device list, a device's record, the device
//! management services, and the mirror's freshness.
//!
//! Times travel as Unix seconds (the wasm build has no `time` crate); [`day`] and [`ago`]
//! turn them into what the pages show.

use serde::{Deserialize, Serialize};

/// The organization a device page is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgRef {
    /// UUID, text form (the `org` URL parameter).
    pub id: String,
    pub name: String,
}

/// How fresh the mirror is, for the line above a list.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Freshness {
    /// When the last successful sync of any of the organization's API accounts ended.
    pub synced_at: Option<i64>,
    /// A sync is running now.
    pub syncing: bool,
    /// Devices Apple returns now.
    pub devices: u64,
    /// Seconds since the Unix epoch on the server when this was answered, so "3 min ago"
    /// does not depend on the browser's clock.
    pub now: i64,
}

/// One row of the device list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRow {
    pub serial: String,
    pub model: Option<String>,
    pub family: Option<String>,
    /// `ASSIGNED` / `UNASSIGNED`.
    pub status: Option<String>,
    pub service_id: Option<String>,
    pub service_name: Option<String>,
    pub added_at: Option<i64>,
    /// Apple no longer returns it (released) since then.
    pub absent_since: Option<i64>,
}

/// A service as a filter choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceChoice {
    pub id: String,
    pub name: String,
}

/// One page of the device list with what its filter form needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceList {
    pub org: OrgRef,
    pub rows: Vec<DeviceRow>,
    /// Devices matching the query, across all pages.
    pub total: u64,
    /// The `after` cursor of the next page.
    pub next: Option<String>,
    pub freshness: Freshness,
    /// The viewer may export CSV.
    pub may_export: bool,
    /// The viewer may assign devices (rows can be selected and handed to the wizard).
    pub may_assign: bool,
}

/// What the device list's filter form offers: the organization, its services, and the
/// models of its present devices (by name, ignoring case).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceFilterChoices {
    pub org: OrgRef,
    pub services: Vec<ServiceChoice>,
    pub models: Vec<String>,
}

/// Apple's purchase source types (the `source` filter) with what the pages call them.
pub const PURCHASE_SOURCES: [(&str, &str); 3] = [
    ("APPLE", "Apple"),
    ("RESELLER", "Reseller"),
    ("MANUALLY_ADDED", "Added manually"),
];

/// The AppleCare filter's choices (`applecare=`). Orchard knows a device's coverage once
/// someone has opened the device (Apple reports it one device per call), so "not checked
/// yet" is its own choice, not "not covered".
pub const APPLECARE_STATES: [(&str, &str); 3] = [
    ("covered", "Covered"),
    ("not_covered", "Not covered"),
    ("unchecked", "Not checked yet"),
];

/// A device's full record, as the mirror holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceDetail {
    pub org: OrgRef,
    pub serial: String,
    pub model: Option<String>,
    pub family: Option<String>,
    pub status: Option<String>,
    pub service_id: Option<String>,
    pub service_name: Option<String>,
    pub absent_since: Option<i64>,
    /// Apple's other attributes, labelled, in display order; missing values left out.
    pub attributes: Vec<(String, String)>,
    /// When Orchard first stored it and last changed it.
    pub first_seen_at: i64,
    pub changed_at: i64,
    pub freshness: Freshness,
    /// AppleCare coverage and Activation Lock as Orchard has them cached (the page asks
    /// Apple from the browser when they are missing or old).
    pub coverage: DeviceCoverage,
    /// The jobs that included the device, for those who may read the audit.
    pub history: Option<super::jobs::DeviceHistory>,
    /// The Blueprints that name the device, by name.
    pub blueprints: Vec<Named>,
    /// Apple's audit events about the device, newest first (for those who may read the
    /// audit).
    pub apple_events: Option<Vec<AppleEvent>>,
}

/// Something of Apple's with a name to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Named {
    pub id: String,
    pub name: String,
}

/// One of Apple's audit events about a device, told for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppleEvent {
    pub at: i64,
    /// What happened, e.g. "Assigned to Jamf Pro".
    pub what: String,
    /// Who did it: a person's name or address, or "Apple", "an API account".
    pub by: String,
    /// Apple recorded it as a failure.
    pub failed: bool,
}

/// A device's AppleCare coverage and Activation Lock, fetched from Apple on demand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCoverage {
    /// What Apple said, when it could be asked.
    pub facts: Option<CoverageFacts>,
    /// Why Apple could not be asked or did not answer, in plain words (`facts` then holds
    /// what Orchard had, if anything).
    pub problem: Option<String>,
    /// Nothing cached, or older than the configured age: the page asks Apple.
    pub stale: bool,
    /// Whether this person may ask Apple again now.
    pub may_refresh: bool,
    pub now: i64,
    /// "Refresh from Apple" changed the device's record or brought new events: the page
    /// loads the record again.
    #[serde(default)]
    pub record_changed: bool,
}

/// Coverage items and lock, as of `fetched_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverageFacts {
    pub coverage: Vec<CoverageItem>,
    pub lock: LockState,
    /// Unix seconds.
    pub fetched_at: i64,
}

/// One coverage item (Limited Warranty, AppleCare+, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverageItem {
    pub description: String,
    /// `ACTIVE` / `INACTIVE`.
    pub status: Option<String>,
    pub payment_type: Option<String>,
    pub agreement_number: Option<String>,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub canceled: bool,
}

/// The Activation Lock as Apple reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockState {
    /// Locked, by `MDM` or `USER` when Apple says which.
    Locked {
        lock_type: Option<String>,
    },
    NotLocked,
    /// Apple could not report it.
    Unavailable {
        reason: String,
    },
}

/// Words for Apple's AppleCare payment types.
pub fn payment_label(payment: &str) -> &str {
    match payment {
        "ABE_SUBSCRIPTION" => "AppleCare+ for Business subscription",
        "PAID_UP_FRONT" => "Paid up front",
        "SUBSCRIPTION" => "Subscription",
        "NONE" => "Included",
        other => other,
    }
}

/// One device management service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRow {
    pub id: String,
    pub name: String,
    /// `MDM`, `APPLE_CONFIGURATOR`, …
    pub server_type: Option<String>,
    pub default_families: Option<String>,
    pub device_count: u64,
    pub absent_since: Option<i64>,
}

/// The services page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceList {
    pub org: OrgRef,
    pub rows: Vec<ServiceRow>,
    pub freshness: Freshness,
}

/// The sync of one API account, for Settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountSync {
    pub account_id: String,
    pub account_name: String,
    /// The latest run's id (newer runs have larger ones).
    pub latest_run: Option<i64>,
    /// `running`, `succeeded`, `failed`, or `never`.
    pub state: String,
    /// What a running sync does now (phase, pages, items, rate, ETA, budget).
    pub progress: Option<String>,
    pub last_success_at: Option<i64>,
    /// Seconds the last successful run took.
    pub last_duration_secs: Option<i64>,
    pub last_error: Option<String>,
    /// 429s Apple answered during the latest run.
    pub rate_limited: u64,
    /// Seconds the latest run waited for the request budget.
    pub budget_wait_secs: u64,
    pub devices_read: u64,
    pub rows_written: u64,
    /// What else the account's syncs copied: (what, how many), e.g. ("users", 5000).
    pub directory: Vec<(String, u64)>,
    pub now: i64,
}

/// `YYYY-MM-DD` of a Unix time (UTC), computed without a date library.
pub fn day(unix: i64) -> String {
    // Howard Hinnant's days-to-civil algorithm.
    let days = unix.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// "just now", "3 min ago", "5 h ago", "2 days ago".
pub fn ago(then: i64, now: i64) -> String {
    let secs = (now - then).max(0);
    match secs {
        0..60 => "just now".to_owned(),
        60..3_600 => format!("{} min ago", secs / 60),
        3_600..86_400 => format!("{} h ago", secs / 3_600),
        _ if secs < 2 * 86_400 => "1 day ago".to_owned(),
        _ => format!("{} days ago", secs / 86_400),
    }
}

/// The freshness line: "Synced 3 min ago · 5,000 devices" (or why there is no data yet).
pub fn freshness_line(f: &Freshness) -> String {
    let count = thousands(f.devices);
    match (f.synced_at, f.syncing) {
        (Some(at), false) => format!("Synced {} · {count} devices", ago(at, f.now)),
        (Some(at), true) => {
            format!("Synced {} · {count} devices · syncing now", ago(at, f.now))
        }
        (None, true) => "The first sync is running: devices appear as pages arrive.".to_owned(),
        (None, false) => "Not synced yet.".to_owned(),
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_civil_dates() {
        assert_eq!(day(0), "1970-01-01");
        assert_eq!(day(951_782_400), "2000-02-29");
        assert_eq!(day(1_700_000_000), "2023-11-14");
        assert_eq!(day(-86_400), "1969-12-31");
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(ago(100, 130), "just now");
        assert_eq!(ago(0, 180), "3 min ago");
        assert_eq!(ago(0, 5 * 3600 + 10), "5 h ago");
        assert_eq!(ago(0, 86_400 + 5), "1 day ago");
        assert_eq!(ago(0, 3 * 86_400), "3 days ago");
        assert_eq!(
            ago(500, 100),
            "just now",
            "a clock behind is not negative time"
        );
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
