//! Property tests of the pure pieces: date format/parse round trip, open enums, the activity
//! log CSV parser against quoted fields, and the retry policy's invariants.

use std::time::{Duration, SystemTime};

use apple::RetryConfig;
use apple::activity_log;
use apple::model::date;
use apple::resources::activities::ActivitySubStatus;
use apple::retry::{self, Decision, FixedJitter, Outcome};
use proptest::prelude::*;
use reqwest::{Method, StatusCode};

fn csv_field(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

proptest! {
    #[test]
    fn dates_round_trip_at_millisecond_precision(secs in 0i64..4_102_444_800, millis in 0u32..1000) {
        let t = time::OffsetDateTime::from_unix_timestamp(secs).unwrap()
            + time::Duration::milliseconds(i64::from(millis));
        let text = date::format(t);
        prop_assert_eq!(date::parse(&text).unwrap(), t);
        let whole = time::OffsetDateTime::from_unix_timestamp(secs).unwrap();
        let no_fraction = text[..19].to_owned() + "Z";
        prop_assert_eq!(date::parse(&no_fraction).unwrap(), whole);
    }

    #[test]
    fn open_enums_keep_any_string(s in "[A-Z_]{1,40}") {
        let v: ActivitySubStatus = serde_json::from_value(serde_json::json!(s.clone())).unwrap();
        prop_assert_eq!(v.as_str(), s.as_str());
        prop_assert_eq!(serde_json::to_value(&v).unwrap(), serde_json::json!(s));
    }

    #[test]
    fn csv_rows_survive_quoting(
        rows in proptest::collection::vec(("[A-Z0-9]{4,12}", "[ -~\n]{0,40}"), 0..20)
    ) {
        let mut text = String::from("Serial Number,Status,Details\r\n");
        for (serial, details) in &rows {
            text.push_str(&format!("{serial},FAILED,{}\r\n", csv_field(details)));
        }
        let parsed = activity_log::parse(&text).unwrap();
        prop_assert_eq!(parsed.len(), rows.len());
        for (row, (serial, details)) in parsed.iter().zip(&rows) {
            prop_assert_eq!(row.serial_number.as_str(), serial.as_str());
            let trimmed = details.trim();
            prop_assert_eq!(row.details.as_deref(), (!trimmed.is_empty()).then_some(trimmed));
            prop_assert!(row.failed());
        }
    }

    #[test]
    fn retry_never_resends_writes_and_never_undercuts_retry_after(
        code in 100u16..600,
        retry_after in proptest::option::of(0u64..120),
        attempt in 1u32..6,
        elapsed in 0u64..400,
        jitter in 0.0f64..1.0,
        write in any::<bool>(),
    ) {
        let cfg = RetryConfig::default();
        let method = if write { Method::POST } else { Method::GET };
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(ra) = retry_after {
            headers.insert(reqwest::header::RETRY_AFTER, ra.into());
        }
        let d = retry::decide(
            &cfg,
            &method,
            Outcome::Status(StatusCode::from_u16(code).unwrap()),
            Some(&headers),
            attempt,
            Duration::from_secs(elapsed),
            Duration::from_secs(300),
            SystemTime::now(),
            &FixedJitter(jitter),
        );
        if let Decision::RetryAfter(wait) = d {
            prop_assert!(!write);
            prop_assert!(attempt < cfg.max_attempts);
            prop_assert!(code == 408 || code == 429 || code >= 500);
            if let Some(ra) = retry_after {
                prop_assert!(wait >= Duration::from_secs(ra));
            }
            prop_assert!(Duration::from_secs(elapsed) + wait <= Duration::from_secs(300));
        }
    }
}
