//! `GET /devices/export.csv?org=…&<device list parameters>`: exactly the devices the list
//! shows for the same parameters, every page of them, as CSV.
//!
//! The body streams: one page of 500 rows is read, written out, and dropped before the next
//! is read (keyset paging), so a million rows never sit in memory. The first page is read
//! before the response starts, so a bad parameter or a refused role is a proper 4xx rather
//! than a broken download.
//!
//! Cells that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, carriage return
//! at the start) are prefixed with `'`; every cell is quoted when it holds a comma, quote or
//! line break.

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use backend::identity::roles::Permission;
use backend::mirror::DeviceRecord;
use backend::mirror::search::{DeviceCursor, DeviceQuery, SearchPage};
use backend::orgs::OrgId;

use app::ssr::AppState;
use app::ssr::auth::CurrentUser;

/// Rows read per page while streaming.
const CHUNK: u32 = 500;

const HEADER: [&str; 19] = [
    "serial_number",
    "model",
    "product_family",
    "product_type",
    "capacity",
    "color",
    "status",
    "service_id",
    "service_name",
    "part_number",
    "order_number",
    "purchase_source_type",
    "purchase_source_id",
    "added_to_org",
    "imei",
    "meid",
    "eid",
    "released_since",
    // `covered`, `not_covered`, or empty while Orchard has never asked Apple.
    "applecare",
];

pub async fn devices_csv(
    State(state): State<AppState>,
    user: Option<Extension<CurrentUser>>,
    RawQuery(raw): RawQuery,
) -> Response {
    let Some(Extension(user)) = user else {
        return (StatusCode::UNAUTHORIZED, "Please sign in to continue.").into_response();
    };
    let raw = raw.unwrap_or_default();
    let pairs: Vec<(String, String)> = url_pairs(&raw);
    let Some(org) = org_param(&pairs) else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Parameter `org`: name the organization whose devices to export.",
        )
            .into_response();
    };
    if !user.may(org, Permission::ExportData) {
        return (StatusCode::FORBIDDEN, "Your role does not allow this.").into_response();
    }
    let mut query = match DeviceQuery::from_params(
        pairs
            .iter()
            .filter(|(k, _)| k != "after" && k != "limit")
            .map(|(k, v)| (k.as_str(), v.as_str())),
    ) {
        Ok(query) => query,
        Err(e) => return (StatusCode::UNPROCESSABLE_ENTITY, e.to_string()).into_response(),
    };
    query.limit = CHUNK;
    let services: Vec<(String, String)> = match state.store.service_names(org).await {
        Ok(services) => services.into_iter().map(|s| (s.id, s.name)).collect(),
        Err(e) => return internal(&e),
    };
    let first = match state.index.search(state.store.as_ref(), org, &query).await {
        Ok(page) => page,
        Err(e) => return internal(&e),
    };
    let org_name = state
        .store
        .organization(org)
        .await
        .map(|o| o.slug)
        .unwrap_or_else(|_| "devices".to_owned());
    let export = Export {
        state,
        org,
        query,
        services,
        page: Some(first),
        header_sent: false,
    };
    csv_response(
        &format!("{org_name}-devices.csv"),
        Body::from_stream(futures_stream(export)),
    )
}

fn internal(error: &(dyn std::error::Error + 'static)) -> Response {
    export_failed("device export", error)
}

/// 500 for an export that failed before its first byte; the error goes to the log only.
pub(crate) fn export_failed(what: &str, error: &(dyn std::error::Error + 'static)) -> Response {
    tracing::error!(error, "{what} failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "The export failed on the server.",
    )
        .into_response()
}

/// A CSV download named `filename`, never cached.
pub(crate) fn csv_response(filename: &str, body: Body) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response()
}

/// The organization named by the `org` parameter of an export URL's query.
pub(crate) fn org_param(pairs: &[(String, String)]) -> Option<OrgId> {
    pairs
        .iter()
        .find(|(k, _)| k == "org")
        .and_then(|(_, v)| uuid::Uuid::try_parse(v.trim()).ok())
        .map(OrgId)
}

pub(crate) fn url_pairs(raw: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The state of one export between pages.
struct Export {
    state: AppState,
    org: OrgId,
    query: DeviceQuery,
    services: Vec<(String, String)>,
    /// The page to write next; `None` when done.
    page: Option<SearchPage>,
    header_sent: bool,
}

impl Export {
    /// The next chunk of CSV, or `None` at the end.
    async fn next_chunk(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        let mut out = String::new();
        if !self.header_sent {
            self.header_sent = true;
            push_row(&mut out, HEADER);
        }
        let page = self.page.take()?;
        for device in &page.devices {
            self.write_row(&mut out, device);
        }
        if let Some(next) = page.next.as_deref().and_then(DeviceCursor::decode) {
            self.query.after = Some(next);
            match self
                .state
                .index
                .search(self.state.store.as_ref(), self.org, &self.query)
                .await
            {
                Ok(page) => self.page = Some(page),
                Err(e) => {
                    // The client sees a truncated download rather than a silently short file.
                    tracing::error!(
                        error = &e as &dyn std::error::Error,
                        "device export stopped"
                    );
                    return Some(Err(std::io::Error::other("export stopped")));
                }
            }
        }
        Some(Ok(Bytes::from(out)))
    }

    fn write_row(&self, out: &mut String, d: &DeviceRecord) {
        let service_name = d.service_id.as_ref().and_then(|id| {
            self.services
                .iter()
                .find(|(sid, _)| sid == id)
                .map(|(_, name)| name.clone())
        });
        let day = |t: Option<i64>| t.map(app::model::devices::day);
        let cells = [
            Some(d.serial.clone()),
            d.model.clone(),
            d.product_family.clone(),
            d.product_type.clone(),
            d.capacity.clone(),
            d.color.clone(),
            d.status.clone(),
            d.service_id.clone(),
            service_name,
            d.part_number.clone(),
            d.order_number.clone(),
            d.purchase_source_type.clone(),
            d.purchase_source_id.clone(),
            day(d.added_at),
            d.imei.clone(),
            d.meid.clone(),
            d.eid.clone(),
            day(d.absent_since),
            d.applecare.map(|a| a.as_str().to_owned()),
        ];
        push_row(out, cells.iter().map(|c| c.as_deref().unwrap_or("")));
    }
}

fn futures_stream(
    export: Export,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    // Fused: the compression layer polls once more after the end.
    futures::StreamExt::fuse(futures::stream::unfold(export, |mut export| async move {
        export.next_chunk().await.map(|chunk| (chunk, export))
    }))
}

/// One CSV record: its cells as [`push_cell`] writes them, comma-separated, CRLF-terminated.
pub(crate) fn push_row<'a>(out: &mut String, cells: impl IntoIterator<Item = &'a str>) {
    for (i, cell) in cells.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_cell(out, cell);
    }
    out.push_str("\r\n");
}

/// One CSV cell: formula-looking text defused, quoted when needed.
fn push_cell(out: &mut String, value: &str) {
    // A plain number ("-2085650007946880", a purchase source id) is data, not a formula.
    let number = value.parse::<f64>().is_ok();
    let defused = !number
        && matches!(
            value.chars().next(),
            Some('=' | '+' | '-' | '@' | '\t' | '\r')
        );
    let needs_quotes = defused || value.chars().any(|c| matches!(c, ',' | '"' | '\n' | '\r'));
    if needs_quotes {
        out.push('"');
        if defused {
            out.push('\'');
        }
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_and_formulas_defused() {
        let mut out = String::new();
        push_cell(&mut out, "C02XL0GSJGH5");
        out.push(',');
        push_cell(&mut out, "iMac 21.5\"");
        out.push(',');
        push_cell(&mut out, "=HYPERLINK(\"x\")");
        out.push(',');
        push_cell(&mut out, "-2085650007946880");
        out.push(',');
        push_cell(&mut out, "-1+cmd|' /C calc'!A0");
        assert_eq!(
            out,
            "C02XL0GSJGH5,\"iMac 21.5\"\"\",\"'=HYPERLINK(\"\"x\"\")\",-2085650007946880,\"'-1+cmd|' /C calc'!A0\""
        );
    }

    #[test]
    fn query_strings_decode_like_forms() {
        assert_eq!(
            url_pairs("org=abc&q=mac+book%20air&family=iPad&empty="),
            vec![
                ("org".to_owned(), "abc".to_owned()),
                ("q".to_owned(), "mac book air".to_owned()),
                ("family".to_owned(), "iPad".to_owned()),
                ("empty".to_owned(), String::new()),
            ]
        );
    }
}
