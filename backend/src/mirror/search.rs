//! Searching the device mirror: the query model, its URL parameters, and the matching rules
//! every search path must follow (the SQL of each database and the in-memory [`index`]).
//!
//! # Matching rules
//! * The text is trimmed, folded to ASCII lower case (other characters compare as they are,
//!   the same on both databases), and split on whitespace into words. Every word must match
//!   (AND). Empty text matches every device; the filters still apply.
//! * A word matches a device when the device's serial starts with it (which covers equality);
//!   or, when the word has at least [`MIN_SUBSTRING`] characters, when it occurs anywhere in
//!   the serial or in one of the free-text fields ([`TEXT_FIELDS`]: model, product family,
//!   product type, order number, part number, color, IMEI, MEID, EID, Wi-Fi, Bluetooth and
//!   Ethernet MAC, purchase source id). Shorter words are serial prefixes only: "C0" would
//!   otherwise match half the fleet through order numbers.
//! * Filters are exact comparisons with the stored value (Apple's spelling, case-sensitive):
//!   product families (any of), model, status, service (an id, or no service), purchase
//!   source type, added date (`added_from` ≤ `added_at` < `added_until`, Unix seconds; a
//!   device without an added date fails a date filter), AppleCare state (covered, not
//!   covered, or never asked: see [`AppleCareFilter`]). Devices Apple no longer returns
//!   (`absent_since` set) are left out unless asked for.
//!
//! # Order and paging
//! Every sort ends with the serial, unique within an organization, so the order is total and
//! a keyset cursor (the last row's sort key and serial) pages without skipping or repeating
//! rows while the mirror changes underneath. Text compares bytewise (UTF-8), like Rust's
//! `str` ordering. A missing added date sorts after all others in both date orders; a missing
//! model sorts first (as the empty string). `total` counts every match, ignoring the cursor.
//!
//! [`index`]: crate::mirror::index

use std::cmp::Ordering;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use time::macros::format_description;
use time::{Date, Duration, Time};

use super::{AppleCareState, DeviceRecord};

/// Words shorter than this match serial prefixes only.
pub const MIN_SUBSTRING: usize = 3;
/// Page size when the URL does not say.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page a query may ask for.
pub const MAX_LIMIT: u32 = 500;

/// The free-text fields a word of [`MIN_SUBSTRING`] or more characters is looked up in,
/// as `mirror_devices` columns.
pub const TEXT_FIELDS: [&str; 13] = [
    "model",
    "product_family",
    "product_type",
    "order_number",
    "part_number",
    "color",
    "imei",
    "meid",
    "eid",
    "wifi_mac",
    "bluetooth_mac",
    "ethernet_mac",
    "purchase_source_id",
];

/// The values of [`TEXT_FIELDS`] of one device, in that order.
pub fn text_fields(d: &DeviceRecord) -> [Option<&str>; 13] {
    [
        d.model.as_deref(),
        d.product_family.as_deref(),
        d.product_type.as_deref(),
        d.order_number.as_deref(),
        d.part_number.as_deref(),
        d.color.as_deref(),
        d.imei.as_deref(),
        d.meid.as_deref(),
        d.eid.as_deref(),
        d.wifi_mac.as_deref(),
        d.bluetooth_mac.as_deref(),
        d.ethernet_mac.as_deref(),
        d.purchase_source_id.as_deref(),
    ]
}

/// What a device list shows: text, filters, order, and where the page starts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceQuery {
    /// As typed; see [`DeviceQuery::words`].
    pub text: String,
    pub filters: DeviceFilters,
    pub sort: DeviceSort,
    /// Rows strictly after this position in `sort` order (the previous page's `next`).
    pub after: Option<DeviceCursor>,
    /// Rows per page, 1..=[`MAX_LIMIT`].
    pub limit: u32,
}

/// Exact-match filters (see the module note).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceFilters {
    /// Any of these product families; empty = every family.
    pub families: Vec<String>,
    pub model: Option<String>,
    pub status: Option<AssignmentStatus>,
    pub service: Option<ServiceFilter>,
    pub purchase_source_type: Option<String>,
    /// Unix seconds, inclusive.
    pub added_from: Option<i64>,
    /// Unix seconds, exclusive.
    pub added_until: Option<i64>,
    pub applecare: Option<AppleCareFilter>,
    /// Also list devices Apple no longer returns (released). Default: no.
    pub include_absent: bool,
}

/// Apple's assignment status of a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignmentStatus {
    Assigned,
    Unassigned,
}

impl AssignmentStatus {
    /// As Apple spells it (and the mirror stores it).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Assigned => "ASSIGNED",
            Self::Unassigned => "UNASSIGNED",
        }
    }
}

/// Which device management service a device must be in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceFilter {
    /// In this service's device list.
    Id(String),
    /// In no service's device list.
    None,
}

/// Which AppleCare state a device must be in. Apple reports coverage one device per call,
/// so Orchard knows it only for devices someone opened (or refreshed): the rest are
/// [`Self::Unchecked`], not "not covered".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppleCareFilter {
    Is(AppleCareState),
    /// Orchard has never asked Apple.
    Unchecked,
}

impl AppleCareFilter {
    pub const ALL: [Self; 3] = [
        Self::Is(AppleCareState::Covered),
        Self::Is(AppleCareState::NotCovered),
        Self::Unchecked,
    ];

    /// The URL spelling (`applecare=`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Is(state) => state.as_str(),
            Self::Unchecked => "unchecked",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "unchecked" => Some(Self::Unchecked),
            other => AppleCareState::parse(other).map(Self::Is),
        }
    }

    pub fn accepts(self, state: Option<AppleCareState>) -> bool {
        match self {
            Self::Is(wanted) => state == Some(wanted),
            Self::Unchecked => state.is_none(),
        }
    }
}

/// Result order. Each ends with the serial (ascending) as a tie-break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSort {
    #[default]
    Serial,
    AddedNewest,
    AddedOldest,
    Model,
    LastChanged,
}

impl DeviceSort {
    pub const ALL: [Self; 5] = [
        Self::Serial,
        Self::AddedNewest,
        Self::AddedOldest,
        Self::Model,
        Self::LastChanged,
    ];

    /// The URL spelling (`sort=`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Serial => "serial",
            Self::AddedNewest => "added_newest",
            Self::AddedOldest => "added_oldest",
            Self::Model => "model",
            Self::LastChanged => "changed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The sort key of a device (the serial is compared after it).
    pub fn key(self, d: &DeviceRecord) -> SortKey {
        match self {
            Self::Serial => SortKey::None,
            Self::AddedNewest => SortKey::Int(d.added_at.unwrap_or(i64::MIN)),
            Self::AddedOldest => SortKey::Int(d.added_at.unwrap_or(i64::MAX)),
            Self::Model => SortKey::Text(d.model.clone().unwrap_or_default()),
            Self::LastChanged => SortKey::Int(d.changed_at),
        }
    }

    /// Whether the key runs from high to low.
    pub fn descending(self) -> bool {
        matches!(self, Self::AddedNewest | Self::LastChanged)
    }

    /// Orders two devices as this sort lists them.
    pub fn compare(self, a: &DeviceRecord, b: &DeviceRecord) -> Ordering {
        self.compare_to(&self.key(a), &a.serial, &self.key(b), &b.serial)
    }

    fn compare_to(self, ka: &SortKey, sa: &str, kb: &SortKey, sb: &str) -> Ordering {
        let by_key = ka.cmp(kb);
        let by_key = if self.descending() {
            by_key.reverse()
        } else {
            by_key
        };
        by_key.then_with(|| sa.as_bytes().cmp(sb.as_bytes()))
    }
}

/// The part of a row's position that comes before its serial.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum SortKey {
    None,
    Int(i64),
    Text(String),
}

/// A position in one sort order: "after this row". Opaque to users (see [`Self::encode`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCursor {
    pub sort: DeviceSort,
    pub key: SortKey,
    pub serial: String,
}

impl DeviceCursor {
    /// The position of `device` in `sort` order.
    pub fn of(sort: DeviceSort, device: &DeviceRecord) -> Self {
        Self {
            sort,
            key: sort.key(device),
            serial: device.serial.clone(),
        }
    }

    /// Whether `device` comes strictly after this position.
    pub fn precedes(&self, device: &DeviceRecord) -> bool {
        self.sort
            .compare_to(
                &self.key,
                &self.serial,
                &self.sort.key(device),
                &device.serial,
            )
            .is_lt()
    }

    /// URL-safe base64 of `sort \n kind key \n serial`, so a page URL can carry it.
    pub fn encode(&self) -> String {
        let key = match &self.key {
            SortKey::None => "-".to_owned(),
            SortKey::Int(n) => format!("i{n}"),
            SortKey::Text(t) => format!("t{t}"),
        };
        let raw = format!("{}\n{}\n{key}", self.sort.as_str(), self.serial);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The inverse of [`Self::encode`]; `None` for anything else.
    pub fn decode(text: &str) -> Option<Self> {
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(text).ok()?).ok()?;
        let mut parts = raw.splitn(3, '\n');
        let sort = DeviceSort::parse(parts.next()?)?;
        let serial = parts.next()?.to_owned();
        let key = parts.next()?;
        let key = match (key.get(..1)?, &key[1..]) {
            ("-", "") => SortKey::None,
            ("i", n) => SortKey::Int(n.parse().ok()?),
            ("t", t) => SortKey::Text(t.to_owned()),
            _ => return None,
        };
        let expected = match sort {
            DeviceSort::Serial => matches!(key, SortKey::None),
            DeviceSort::Model => matches!(key, SortKey::Text(_)),
            _ => matches!(key, SortKey::Int(_)),
        };
        expected.then_some(Self { sort, key, serial })
    }
}

impl fmt::Display for DeviceCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchPage {
    pub devices: Vec<DeviceRecord>,
    /// Every device the query matches, across all pages.
    pub total: u64,
    /// The cursor of the next page (`after=`), `None` on the last page.
    pub next: Option<String>,
}

/// A device management service's id and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct ServiceName {
    /// Apple's id of the `mdmServers` resource.
    pub id: String,
    pub name: String,
    /// Since when Apple no longer lists it.
    pub absent_since: Option<i64>,
}

/// Counts for a page's freshness line.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MirrorSummary {
    /// Devices Apple currently returns.
    pub devices: u64,
    /// Devices Apple no longer returns (released), kept for history.
    pub absent: u64,
    /// The latest `changed_at` of any device, Unix seconds; `None` before the first sync.
    pub newest_change: Option<i64>,
}

/// A URL parameter that does not make a query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parameter `{parameter}`: {message}")]
pub struct QueryError {
    pub parameter: &'static str,
    pub message: String,
}

fn invalid(parameter: &'static str, message: impl Into<String>) -> QueryError {
    QueryError {
        parameter,
        message: message.into(),
    }
}

fn parse_day(parameter: &'static str, value: &str) -> Result<i64, QueryError> {
    let date = Date::parse(value, format_description!("[year]-[month]-[day]")).map_err(|_| {
        invalid(
            parameter,
            format!("`{value}` is not a date like 2024-03-31"),
        )
    })?;
    Ok(date.with_time(Time::MIDNIGHT).assume_utc().unix_timestamp())
}

impl DeviceQuery {
    /// The query with default sort and page size.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            limit: DEFAULT_LIMIT,
            ..Self::default()
        }
    }

    /// Builds a query from URL parameters (repeatable `family`; unknown names are ignored,
    /// pages keep their own parameters in the same URL):
    ///
    /// | name | value |
    /// |---|---|
    /// | `q` | the search text |
    /// | `family` | a product family, repeatable (any of) |
    /// | `model` | a model, exact |
    /// | `status` | `assigned` or `unassigned` |
    /// | `service` | a service id, or `none` |
    /// | `source` | a purchase source type (`APPLE`, `RESELLER`, `MANUALLY_ADDED`, …) |
    /// | `added_from`, `added_to` | `YYYY-MM-DD`, UTC, both days included |
    /// | `applecare` | `covered`, `not_covered` or `unchecked` |
    /// | `absent` | `1`/`true`: include devices Apple no longer returns |
    /// | `sort` | `serial` (default), `added_newest`, `added_oldest`, `model`, `changed` |
    /// | `after` | a page cursor from [`SearchPage::next`] |
    /// | `limit` | 1..=500, default 50 |
    ///
    /// Empty values count as absent, so an HTML GET form with blank fields works.
    pub fn from_params<'a, I>(params: I) -> Result<Self, QueryError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut q = Self::text("");
        let mut after = None;
        let mut added_to = None;
        for (name, value) in params {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            match name {
                "q" => q.text = value.to_owned(),
                "family" => q.filters.families.push(value.to_owned()),
                "model" => q.filters.model = Some(value.to_owned()),
                "status" => {
                    q.filters.status = Some(match value.to_ascii_lowercase().as_str() {
                        "assigned" => AssignmentStatus::Assigned,
                        "unassigned" => AssignmentStatus::Unassigned,
                        _ => {
                            return Err(invalid(
                                "status",
                                format!("`{value}` is not `assigned` or `unassigned`"),
                            ));
                        }
                    });
                }
                "service" => {
                    q.filters.service = Some(if value.eq_ignore_ascii_case("none") {
                        ServiceFilter::None
                    } else {
                        ServiceFilter::Id(value.to_owned())
                    });
                }
                "source" => q.filters.purchase_source_type = Some(value.to_owned()),
                "added_from" => q.filters.added_from = Some(parse_day("added_from", value)?),
                "added_to" => added_to = Some(parse_day("added_to", value)?),
                "applecare" => {
                    q.filters.applecare = Some(AppleCareFilter::parse(value).ok_or_else(|| {
                        let known: Vec<_> =
                            AppleCareFilter::ALL.iter().map(|f| f.as_str()).collect();
                        invalid(
                            "applecare",
                            format!("`{value}` is not one of {}", known.join(", ")),
                        )
                    })?);
                }
                "absent" => {
                    q.filters.include_absent = match value {
                        "1" | "true" | "yes" | "on" => true,
                        "0" | "false" | "no" | "off" => false,
                        _ => return Err(invalid("absent", format!("`{value}` is not 1 or 0"))),
                    };
                }
                "sort" => {
                    q.sort = DeviceSort::parse(value).ok_or_else(|| {
                        let known: Vec<_> = DeviceSort::ALL.iter().map(|s| s.as_str()).collect();
                        invalid(
                            "sort",
                            format!("unknown sort `{value}` (one of {})", known.join(", ")),
                        )
                    })?;
                }
                "after" => {
                    after = Some(
                        DeviceCursor::decode(value)
                            .ok_or_else(|| invalid("after", "not a page cursor"))?,
                    );
                }
                "limit" => {
                    q.limit = value
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| {
                            invalid(
                                "limit",
                                format!("`{value}` is not a number from 1 to {MAX_LIMIT}"),
                            )
                        })?;
                }
                _ => {}
            }
        }
        if let Some(to) = added_to {
            q.filters.added_until = Some(to + Duration::DAY.whole_seconds());
        }
        if let (Some(from), Some(until)) = (q.filters.added_from, q.filters.added_until)
            && from >= until
        {
            return Err(invalid("added_to", "is before `added_from`"));
        }
        if let Some(cursor) = &after
            && cursor.sort != q.sort
        {
            return Err(invalid(
                "after",
                "belongs to another sort order; start from the first page",
            ));
        }
        q.after = after;
        Ok(q)
    }

    /// The URL parameters of this query (the inverse of [`Self::from_params`]).
    pub fn to_params(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let f = &self.filters;
        if !self.text.trim().is_empty() {
            out.push(("q", self.text.trim().to_owned()));
        }
        out.extend(f.families.iter().map(|v| ("family", v.clone())));
        out.extend(f.model.iter().map(|v| ("model", v.clone())));
        if let Some(s) = f.status {
            out.push(("status", s.as_str().to_ascii_lowercase()));
        }
        match &f.service {
            Some(ServiceFilter::Id(id)) => out.push(("service", id.clone())),
            Some(ServiceFilter::None) => out.push(("service", "none".into())),
            None => {}
        }
        out.extend(f.purchase_source_type.iter().map(|v| ("source", v.clone())));
        let day = |t: i64| {
            time::OffsetDateTime::from_unix_timestamp(t)
                .map(|t| t.date().to_string())
                .unwrap_or_default()
        };
        if let Some(t) = f.added_from {
            out.push(("added_from", day(t)));
        }
        if let Some(t) = f.added_until {
            out.push(("added_to", day(t - Duration::DAY.whole_seconds())));
        }
        if let Some(a) = f.applecare {
            out.push(("applecare", a.as_str().into()));
        }
        if f.include_absent {
            out.push(("absent", "1".into()));
        }
        if self.sort != DeviceSort::Serial {
            out.push(("sort", self.sort.as_str().into()));
        }
        if let Some(c) = &self.after {
            out.push(("after", c.encode()));
        }
        if self.limit != DEFAULT_LIMIT {
            out.push(("limit", self.limit.to_string()));
        }
        out
    }

    /// The words of the text: trimmed, ASCII lower case, split on whitespace.
    pub fn words(&self) -> Vec<String> {
        words(&self.text)
    }

    /// The reference implementation of the matching rules: whether `device` is in the
    /// result (text and filters; not the cursor).
    pub fn matches(&self, device: &DeviceRecord) -> bool {
        self.filters.accept(device) && self.words().iter().all(|w| word_matches(w, device))
    }
}

/// Splits search text into words (see the module note).
pub fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(str::to_ascii_lowercase)
        .collect()
}

/// Whether `word` (already folded) can match through substring rules.
pub fn is_substring_word(word: &str) -> bool {
    word.chars().count() >= MIN_SUBSTRING
}

/// Whether `hay` contains `word` (already folded), ignoring ASCII case.
pub fn contains_folded(hay: &[u8], w: &[u8]) -> bool {
    w.len() <= hay.len()
        && hay
            .windows(w.len())
            .any(|win| win.iter().zip(w).all(|(a, b)| a.to_ascii_lowercase() == *b))
}

/// Whether `serial` starts with `word` (already folded), ignoring ASCII case.
pub fn starts_with_folded(serial: &str, word: &str) -> bool {
    let s = serial.as_bytes();
    s.len() >= word.len()
        && s.iter()
            .zip(word.as_bytes())
            .all(|(a, b)| a.to_ascii_lowercase() == *b)
}

/// One word against one device (the text rule of the module note).
pub fn word_matches(word: &str, device: &DeviceRecord) -> bool {
    if starts_with_folded(&device.serial, word) {
        return true;
    }
    is_substring_word(word)
        && (contains_folded(device.serial.as_bytes(), word.as_bytes())
            || text_fields(device)
                .into_iter()
                .flatten()
                .any(|v| contains_folded(v.as_bytes(), word.as_bytes())))
}

impl DeviceFilters {
    /// The filter rule of the module note.
    pub fn accept(&self, d: &DeviceRecord) -> bool {
        let eq = |want: &Option<String>, have: &Option<String>| {
            want.as_ref().is_none_or(|w| have.as_ref() == Some(w))
        };
        (self.include_absent || d.absent_since.is_none())
            && (self.families.is_empty()
                || d.product_family
                    .as_ref()
                    .is_some_and(|f| self.families.contains(f)))
            && eq(&self.model, &d.model)
            && self
                .status
                .is_none_or(|s| d.status.as_deref() == Some(s.as_str()))
            && match &self.service {
                None => true,
                Some(ServiceFilter::None) => d.service_id.is_none(),
                Some(ServiceFilter::Id(id)) => d.service_id.as_ref() == Some(id),
            }
            && eq(&self.purchase_source_type, &d.purchase_source_type)
            && self
                .added_from
                .is_none_or(|from| d.added_at.is_some_and(|a| a >= from))
            && self
                .added_until
                .is_none_or(|until| d.added_at.is_some_and(|a| a < until))
            && self.applecare.is_none_or(|a| a.accepts(d.applecare))
    }
}

/// Sorts model names for a person choosing one: ignoring ASCII case first ("iMac" beside
/// "Mac"), then bytewise, so the order is total and the same from every source.
pub fn sort_models(models: &mut [String]) {
    models.sort_unstable_by(|a, b| {
        a.bytes()
            .map(|c| c.to_ascii_lowercase())
            .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
            .then_with(|| a.cmp(b))
    });
}

/// Sorts, counts and pages `matching` (every device the query matches, any order) by the
/// rules above. The in-memory path and the tests' oracle share it.
pub fn page_of(query: &DeviceQuery, mut matching: Vec<DeviceRecord>) -> SearchPage {
    let total = matching.len() as u64;
    matching.sort_by(|a, b| query.sort.compare(a, b));
    let start = query
        .after
        .as_ref()
        .map_or(0, |c| matching.partition_point(|d| !c.precedes(d)));
    let limit = query.limit.max(1) as usize;
    let devices = matching.drain(start..).take(limit + 1).collect();
    SearchPage::cut(query, devices, total)
}

impl SearchPage {
    /// A page from up to `limit + 1` rows in order: the extra row only says there is a next
    /// page, whose cursor is the last row kept.
    pub fn cut(query: &DeviceQuery, mut devices: Vec<DeviceRecord>, total: u64) -> Self {
        let limit = query.limit.max(1) as usize;
        let next = (devices.len() > limit).then(|| {
            devices.truncate(limit);
            devices
                .last()
                .map(|d| DeviceCursor::of(query.sort, d).encode())
                .unwrap_or_default()
        });
        Self {
            devices,
            total,
            next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(serial: &str) -> DeviceRecord {
        DeviceRecord {
            serial: serial.into(),
            ..Default::default()
        }
    }

    #[test]
    fn short_words_match_serial_prefixes_only() {
        let d = DeviceRecord {
            model: Some("C0 thing".into()),
            ..device("XC02AB")
        };
        assert!(!word_matches("c0", &d));
        assert!(word_matches("xc", &d));
        assert!(word_matches("c02", &d));
        assert!(word_matches("thi", &d));
        assert!(!word_matches("thx", &d));
    }

    #[test]
    fn every_word_must_match_and_case_is_ignored() {
        let d = DeviceRecord {
            model: Some("MacBook Pro".into()),
            color: Some("SILVER".into()),
            ..device("C02XL0GSJGH5")
        };
        assert!(DeviceQuery::text("  macbook   SILver ").matches(&d));
        assert!(!DeviceQuery::text("macbook gold").matches(&d));
        assert!(DeviceQuery::text("").matches(&d));
        assert!(DeviceQuery::text("c02xl0gsjgh5").matches(&d));
    }

    #[test]
    fn devices_never_checked_are_unchecked_not_uncovered() {
        let checked = DeviceRecord {
            applecare: Some(AppleCareState::NotCovered),
            ..device("A")
        };
        let unchecked = device("B");
        let mut q = DeviceQuery::text("");
        q.filters.applecare = Some(AppleCareFilter::Is(AppleCareState::NotCovered));
        assert!(q.matches(&checked));
        assert!(!q.matches(&unchecked));
        q.filters.applecare = Some(AppleCareFilter::Unchecked);
        assert!(!q.matches(&checked));
        assert!(q.matches(&unchecked));
        q.filters.applecare = Some(AppleCareFilter::Is(AppleCareState::Covered));
        assert!(!q.matches(&checked) && !q.matches(&unchecked));
    }

    #[test]
    fn absent_devices_are_hidden_unless_asked_for() {
        let d = DeviceRecord {
            absent_since: Some(5),
            ..device("A")
        };
        let mut q = DeviceQuery::text("");
        assert!(!q.matches(&d));
        q.filters.include_absent = true;
        assert!(q.matches(&d));
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        for (sort, key) in [
            (DeviceSort::Serial, SortKey::None),
            (DeviceSort::AddedNewest, SortKey::Int(i64::MIN)),
            (DeviceSort::Model, SortKey::Text("iMac 21.5\"\n".into())),
        ] {
            let c = DeviceCursor {
                sort,
                key,
                serial: "C02/+ü".into(),
            };
            let text = c.encode();
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
            assert_eq!(DeviceCursor::decode(&text), Some(c));
        }
        assert_eq!(DeviceCursor::decode("!!"), None);
        assert_eq!(
            DeviceCursor::decode(&URL_SAFE_NO_PAD.encode("model\nX\ni5")),
            None
        );
    }

    #[test]
    fn parameters_parse_and_round_trip() {
        let params = [
            ("q", " c02 "),
            ("family", "Mac"),
            ("family", "iPad"),
            ("status", "Assigned"),
            ("service", "none"),
            ("source", "RESELLER"),
            ("added_from", "2024-01-01"),
            ("added_to", "2024-01-31"),
            ("absent", "1"),
            ("applecare", "not_covered"),
            ("sort", "added_newest"),
            ("limit", "20"),
            ("page", "ignored"),
            ("model", ""),
        ];
        let q = DeviceQuery::from_params(params).unwrap();
        assert_eq!(q.filters.families, ["Mac", "iPad"]);
        assert_eq!(q.filters.added_from, Some(1_704_067_200));
        assert_eq!(q.filters.added_until, Some(1_706_745_600));
        assert_eq!(q.filters.service, Some(ServiceFilter::None));
        assert_eq!(q.filters.model, None);
        assert_eq!(
            q.filters.applecare,
            Some(AppleCareFilter::Is(AppleCareState::NotCovered))
        );
        let again = q.to_params();
        let again = DeviceQuery::from_params(again.iter().map(|(k, v)| (*k, v.as_str()))).unwrap();
        assert_eq!(
            again,
            DeviceQuery {
                text: "c02".into(),
                ..q
            }
        );
    }

    #[test]
    fn bad_parameters_are_named() {
        for (name, value) in [
            ("sort", "price"),
            ("limit", "0"),
            ("limit", "501"),
            ("limit", "ten"),
            ("added_from", "2024-13-01"),
            ("status", "lost"),
            ("after", "nonsense!"),
            ("absent", "maybe"),
            ("applecare", "expired"),
        ] {
            let err = DeviceQuery::from_params([(name, value)]).unwrap_err();
            assert_eq!(err.parameter, name, "{err}");
            assert!(err.to_string().starts_with(&format!("parameter `{name}`")));
        }
        let err =
            DeviceQuery::from_params([("added_from", "2024-02-01"), ("added_to", "2024-01-01")])
                .unwrap_err();
        assert_eq!(err.parameter, "added_to");
        let cursor = DeviceCursor::of(DeviceSort::Model, &device("A")).encode();
        let err = DeviceQuery::from_params([("after", cursor.as_str())]).unwrap_err();
        assert_eq!(err.parameter, "after");
    }

    #[test]
    fn pages_follow_cursors_without_gaps_or_repeats() {
        let all: Vec<_> = (0..25)
            .map(|i| DeviceRecord {
                added_at: (i % 4 != 0).then_some(i64::from(i % 7)),
                ..device(&format!("S{i:02}"))
            })
            .collect();
        for sort in DeviceSort::ALL {
            let mut q = DeviceQuery {
                sort,
                limit: 4,
                ..DeviceQuery::text("")
            };
            let mut seen = Vec::new();
            loop {
                let page = page_of(&q, all.clone());
                assert_eq!(page.total, 25);
                seen.extend(page.devices.iter().map(|d| d.serial.clone()));
                match page.next {
                    Some(next) => q.after = DeviceCursor::decode(&next),
                    None => break,
                }
            }
            let mut expected = all.clone();
            expected.sort_by(|a, b| sort.compare(a, b));
            let expected: Vec<_> = expected.into_iter().map(|d| d.serial).collect();
            assert_eq!(seen, expected, "{sort:?}");
        }
    }
}
