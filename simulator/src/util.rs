//! Small helpers: timestamps, URL-encoded strings, base64url, deterministic hashing.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Formats a timestamp as Apple does: ISO-8601 UTC with milliseconds and `Z`.
pub(crate) fn iso(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Formats unix seconds plus a millisecond part.
pub(crate) fn iso_secs(secs: u32, millis: u16) -> String {
    let t = OffsetDateTime::from_unix_timestamp(i64::from(secs))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        + time::Duration::milliseconds(i64::from(millis % 1000));
    iso(t)
}

/// Parses an RFC 3339 timestamp (with or without fraction).
pub(crate) fn parse_iso(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// Parses `a=b&c=d` with percent-decoding and `+` as space. Keeps duplicates and order.
pub(crate) fn parse_urlencoded(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'+' {
            out.push(b' ');
        } else if b == b'%'
            && let Some(v) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 2;
        } else {
            out.push(b);
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes a query component (RFC 3986 unreserved characters stay).
pub(crate) fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            // Apple's own links keep brackets literal (`filter[startTimestamp]=`).
            b'[' | b']' | b',' | b':' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Encodes pairs back into a query string.
pub(crate) fn encode_query(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub(crate) fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

/// SplitMix64: a tiny, good mixing function used to derive per-device values
/// from (seed, index) so they need not be stored.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Hash of a seed, an index and a field salt.
pub(crate) fn derive(seed: u64, index: u64, salt: u64) -> u64 {
    mix(mix(seed ^ salt.wrapping_mul(0xA24B_AED4_963E_E407)) ^ index)
}

/// Stable 32-bit tag of a string (FNV-1a), used to bind cursors to a list.
pub(crate) fn tag(s: &str) -> u32 {
    let mut h: u32 = 0x811C_9DC5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencoded_round_trip_keeps_brackets_and_decodes_percent() {
        let pairs = parse_urlencoded("fields%5BorgDevices%5D=serialNumber,status&a=b+c&x=%2F");
        assert_eq!(
            pairs[0],
            ("fields[orgDevices]".into(), "serialNumber,status".into())
        );
        assert_eq!(pairs[1], ("a".into(), "b c".into()));
        assert_eq!(pairs[2], ("x".into(), "/".into()));
        assert_eq!(
            encode_query(&pairs),
            "fields[orgDevices]=serialNumber,status&a=b%20c&x=%2F"
        );
    }

    #[test]
    fn iso_has_milliseconds_and_z() {
        assert_eq!(iso_secs(1_746_113_892, 590), "2025-05-01T15:38:12.590Z");
    }
}
