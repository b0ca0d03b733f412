//! The activity log CSV behind `orgDeviceActivities.downloadUrl`: one row per serial number.
//!
//! Design: the CSV layout is undocumented (SPEC §10.2, §21), so columns are matched by a
//! normalised header name (case, spaces and underscores ignored) and unknown columns are kept
//! in `extra`. Only a missing serial-number column is an error. The URL is pre-signed on a
//! blob store: it is fetched without our bearer token and kept out of errors and logs.

use std::collections::BTreeMap;

use reqwest::{Method, Url};

use crate::budget::Priority;
use crate::client::{Call, Client, Target};
use crate::error::{Error, Result};
use crate::model::{SerialNumber, open_enum};

open_enum!(
    /// Per-device result.
    ActivityLogStatus { Success = "SUCCESS", Failed = "FAILED" }
);

/// One device's line in the activity log.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityLogRow {
    /// The device.
    pub serial_number: SerialNumber,
    /// Server name, when the activity targets one.
    pub device_management_service: Option<String>,
    /// Activity type as written in the log.
    pub activity: Option<String>,
    /// Per-device result.
    pub status: Option<ActivityLogStatus>,
    /// Failure reason, e.g. `Device not found in organization`.
    pub details: Option<String>,
    /// Columns this client does not know, by header.
    pub extra: BTreeMap<String, String>,
}

impl ActivityLogRow {
    /// Whether this device failed (a `COMPLETED` activity can still hide failures, SPEC §19.13).
    pub fn failed(&self) -> bool {
        !matches!(self.status, Some(ActivityLogStatus::Success))
    }
}

/// Splits CSV text into records (RFC 4180: quotes, doubled quotes, CRLF, newlines in quotes).
fn records(text: &str) -> Result<Vec<Vec<String>>> {
    let mut out = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut chars = text.trim_start_matches('\u{feff}').chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => in_quotes = true,
            ',' => record.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                record.push(std::mem::take(&mut field));
                out.push(std::mem::take(&mut record));
            }
            _ => field.push(c),
        }
    }
    if in_quotes {
        return Err(Error::ActivityLog("unterminated quoted field".to_owned()));
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        out.push(record);
    }
    out.retain(|r| !(r.len() == 1 && r[0].trim().is_empty()));
    Ok(out)
}

fn normalise(header: &str) -> String {
    header
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Parses the activity log CSV.
pub fn parse(text: &str) -> Result<Vec<ActivityLogRow>> {
    let mut recs = records(text)?.into_iter();
    let Some(header) = recs.next() else {
        return Ok(Vec::new());
    };
    let names: Vec<String> = header.iter().map(|h| normalise(h)).collect();
    let col = |n: &str| names.iter().position(|h| h == n);
    let serial = col("serialnumber")
        .ok_or_else(|| Error::ActivityLog("no `Serial Number` column".to_owned()))?;
    let server = col("devicemanagementservice");
    let activity = col("activity").or_else(|| col("activitytype"));
    let status = col("status");
    let details = col("details");
    let known = [Some(serial), server, activity, status, details];
    let mut rows = Vec::new();
    for (line, rec) in recs.enumerate() {
        let get = |i: Option<usize>| {
            i.and_then(|i| rec.get(i))
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        };
        let serial_number = get(Some(serial))
            .ok_or_else(|| Error::ActivityLog(format!("row {}: empty serial number", line + 2)))?;
        let extra = header
            .iter()
            .enumerate()
            .filter(|(i, _)| !known.contains(&Some(*i)))
            .filter_map(|(i, h)| rec.get(i).map(|v| (h.trim().to_owned(), v.clone())))
            .collect();
        rows.push(ActivityLogRow {
            serial_number: SerialNumber::new(serial_number),
            device_management_service: get(server),
            activity: get(activity),
            status: get(status).map(|s| ActivityLogStatus::from(s.to_ascii_uppercase().as_str())),
            details: get(details),
            extra,
        });
    }
    Ok(rows)
}

/// Downloads and parses the log at an activity's `downloadUrl`. A GET, so transient failures
/// are retried; the token is only sent if the URL is on the API origin (simulator).
pub async fn download(client: &Client, download_url: &str) -> Result<Vec<ActivityLogRow>> {
    let url = Url::parse(download_url)
        .map_err(|_| Error::ActivityLog("downloadUrl is not a URL".to_owned()))?;
    let raw = client
        .execute(Call {
            endpoint: "orgDeviceActivities.downloadLog",
            method: Method::GET,
            target: Target::Absolute(url),
            query: Vec::new(),
            body: None,
            priority: Priority::Interactive,
        })
        .await?;
    let text = String::from_utf8_lossy(&raw.body);
    parse(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_fields_and_crlf() {
        let text = "\u{feff}Serial Number,Status,Details,Batch\r\nA1,SUCCESS,,7\r\n\"B2\",failed,\"Not found, \"\"really\"\"\nsecond line\",8\r\n";
        let rows = parse(text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].serial_number.as_str(), "A1");
        assert!(!rows[0].failed());
        assert_eq!(rows[0].extra["Batch"], "7");
        assert_eq!(rows[1].status, Some(ActivityLogStatus::Failed));
        assert_eq!(
            rows[1].details.as_deref(),
            Some("Not found, \"really\"\nsecond line")
        );
    }

    #[test]
    fn missing_serial_column_is_an_error() {
        assert!(parse("Device,Status\nA,SUCCESS\n").is_err());
        assert!(parse("").unwrap().is_empty());
    }
}
