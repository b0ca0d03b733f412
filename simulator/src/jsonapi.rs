//! JSON:API plumbing shared by every endpoint: Apple's error documents, query
//! parameter validation, sparse fieldsets and cursor paging.
//!
//! Cursors are `base64url("<position>:<list tag>:<issued ms>")`. The position is
//! a stable slot in the underlying collection (see `model`), so a cursor resumes
//! exactly on any connection; the tag binds it to one list so a cursor from
//! another list is a 400. \[guess\] Apple's cursors decode to colon-separated
//! numbers too, but their meaning is unknown.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// Default page size (Apple's examples report 100).
pub(crate) const DEFAULT_LIMIT: usize = 100;
/// Maximum page size on every list and linkage endpoint.
pub(crate) const MAX_LIMIT: usize = 1000;

/// One Apple error, rendered as `{"errors":[{...}]}`.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub title: &'static str,
    pub detail: String,
    /// `("parameter", name)` or `("pointer", json-pointer)`; boxed to keep `Result`s small.
    pub source: Option<Box<(&'static str, String)>>,
    /// Seconds for the `Retry-After` header (429 only).
    pub retry_after: Option<u64>,
}

impl ApiError {
    fn new(
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            title,
            detail: detail.into(),
            source: None,
            retry_after: None,
        }
    }
    pub(crate) fn parameter(param: &str, detail: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::BAD_REQUEST,
            "PARAMETER_ERROR.INVALID",
            "A parameter has an invalid value",
            detail,
        );
        e.source = Some(Box::new(("parameter", param.into())));
        e
    }
    pub(crate) fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "PARAMETER_ERROR.INVALID",
            "The request is invalid",
            detail,
        )
    }
    pub(crate) fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "NOT_AUTHORIZED",
            "Authentication credentials are missing or invalid.",
            "Provide a properly configured and signed bearer token, and make sure that it has not expired.",
        )
    }
    pub(crate) fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "FORBIDDEN_ERROR",
            "This request is forbidden for security reasons",
            detail,
        )
    }
    pub(crate) fn not_found(ty: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The specified resource doesn't exist",
            format!("There is no resource of type '{ty}' with id '{id}'"),
        )
    }
    pub(crate) fn path_not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The specified resource doesn't exist",
            format!("The path '{path}' does not exist"),
        )
    }
    /// 409 `ENTITY_ERROR.*` with a body pointer.
    pub(crate) fn conflict(code: &'static str, pointer: &str, detail: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::CONFLICT,
            code,
            "The provided entity includes an invalid value",
            detail,
        );
        e.source = Some(Box::new(("pointer", pointer.into())));
        e
    }
    /// 422 `ENTITY_UNPROCESSABLE` with a body pointer.
    pub(crate) fn unprocessable(pointer: &str, detail: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "ENTITY_UNPROCESSABLE",
            "The request entity is not processable",
            detail,
        );
        e.source = Some(Box::new(("pointer", pointer.into())));
        e
    }
    pub(crate) fn rate_limited(retry_after: Option<u64>) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMIT_EXCEEDED",
            "The request rate limit has been reached.",
            "We've received too many requests for this API. Please wait and try again or slow down your request rate.",
        );
        e.retry_after = retry_after;
        e
    }
    pub(crate) fn server_error(status: StatusCode) -> Self {
        Self::new(
            status,
            "UNEXPECTED_ERROR",
            "An unexpected error occurred.",
            "An unexpected error occurred on the server side. If this issue continues, contact us.",
        )
    }

    pub(crate) fn body(&self) -> Value {
        let mut e = json!({
            "id": uuid::Uuid::new_v4().to_string(),
            "status": self.status.as_u16().to_string(),
            "code": self.code,
            "title": self.title,
            "detail": self.detail,
        });
        if let Some(src) = &self.source {
            let (kind, v) = src.as_ref();
            e["source"] = json!({ *kind: v });
        }
        json!({ "errors": [e] })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

pub(crate) type ApiResult<T = Response> = Result<T, ApiError>;

/// What a given endpoint accepts in its query string.
pub(crate) struct Accepts<'a> {
    /// `limit` and `cursor`.
    pub paged: bool,
    /// `fields[<type>]` → allowed names.
    pub fields: &'a [(&'a str, &'a [&'a str])],
    /// Other accepted parameter names, exactly (e.g. `include`, `filter[type]`).
    pub extra: &'a [&'a str],
}

/// The parsed query string of one request.
#[derive(Debug, Clone, Default)]
pub(crate) struct Query {
    pub pairs: Vec<(String, String)>,
}

impl Query {
    pub(crate) fn parse(raw: Option<&str>) -> Self {
        Self {
            pairs: raw.map(crate::util::parse_urlencoded).unwrap_or_default(),
        }
    }

    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.as_str())
    }

    /// Rejects unknown and duplicated parameters and unknown field names. \[guess\]
    /// Apple's JSON:API services answer both with 400 and `source.parameter`.
    pub(crate) fn check(&self, accepts: &Accepts<'_>) -> ApiResult<()> {
        let mut seen: Vec<&str> = Vec::new();
        for (k, v) in &self.pairs {
            if seen.contains(&k.as_str()) {
                return Err(ApiError::parameter(
                    k,
                    format!("The parameter '{k}' can only be used once"),
                ));
            }
            seen.push(k);
            let ok = (accepts.paged && (k == "limit" || k == "cursor"))
                || accepts.extra.contains(&k.as_str());
            if ok {
                continue;
            }
            if let Some(ty) = k.strip_prefix("fields[").and_then(|r| r.strip_suffix(']'))
                && let Some((_, allowed)) = accepts.fields.iter().find(|(t, _)| *t == ty)
            {
                for name in v.split(',') {
                    let by_prefix = allowed
                        .iter()
                        .any(|a| a.strip_suffix('*').is_some_and(|p| name.starts_with(p)));
                    if !allowed.contains(&name) && !by_prefix {
                        return Err(ApiError::parameter(
                            k,
                            format!("'{name}' is not a valid field name for '{k}'"),
                        ));
                    }
                }
                continue;
            }
            return Err(ApiError::parameter(
                k,
                format!("The parameter '{k}' is not allowed on this endpoint"),
            ));
        }
        Ok(())
    }

    /// The `fields[ty]` selection, if any.
    pub(crate) fn fields(&self, ty: &str) -> Option<Vec<String>> {
        self.get(&format!("fields[{ty}]"))
            .map(|v| v.split(',').map(String::from).collect())
    }

    /// `limit`, default 100, 1..=1000.
    pub(crate) fn limit(&self) -> ApiResult<usize> {
        parse_limit("limit", self.get("limit"))
    }

    /// The position encoded in `cursor` (0 without one).
    pub(crate) fn cursor(&self, list: &str) -> ApiResult<u64> {
        match self.get("cursor") {
            None => Ok(0),
            Some(c) => decode_cursor(c, list).ok_or_else(|| {
                ApiError::parameter(
                    "cursor",
                    format!("'{c}' is not a valid cursor for this request"),
                )
            }),
        }
    }
}

pub(crate) fn parse_limit(name: &str, v: Option<&str>) -> ApiResult<usize> {
    let Some(v) = v else { return Ok(DEFAULT_LIMIT) };
    match v.parse::<i64>() {
        Ok(n) if (1..=MAX_LIMIT as i64).contains(&n) => Ok(n as usize),
        Ok(n) if n > MAX_LIMIT as i64 => Err(ApiError::parameter(
            name,
            format!(
                "'{v}' is not a valid value for the parameter '{name}'. The maximum is {MAX_LIMIT}."
            ),
        )),
        _ => Err(ApiError::parameter(
            name,
            format!("'{v}' is not a valid value for the parameter '{name}'. The minimum is 1."),
        )),
    }
}

pub(crate) fn encode_cursor(pos: u64, list: &str) -> String {
    let ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    crate::util::b64url(format!("{pos}:{}:{ms}", crate::util::tag(list)).as_bytes())
}

pub(crate) fn decode_cursor(c: &str, list: &str) -> Option<u64> {
    let raw = String::from_utf8(crate::util::b64url_decode(c)?).ok()?;
    let mut it = raw.split(':');
    let pos = it.next()?.parse().ok()?;
    let tag: u32 = it.next()?.parse().ok()?;
    (tag == crate::util::tag(list)).then_some(pos)
}

/// Takes up to `limit` items from `(position, item)` pairs in ascending
/// position order, starting at `start`; returns them and the position of the
/// next item if there is one.
pub(crate) fn take_page<T>(
    items: impl Iterator<Item = (u64, T)>,
    start: u64,
    limit: usize,
) -> (Vec<T>, Option<u64>) {
    let mut out = Vec::with_capacity(limit.min(1024));
    for (pos, item) in items.skip_while(|(p, _)| *p < start) {
        if out.len() == limit {
            return (out, Some(pos));
        }
        out.push(item);
    }
    (out, None)
}

/// Keeps only the selected attributes and relationships of a resource object.
pub(crate) fn apply_fields(resource: &mut Value, fields: Option<&[String]>) {
    let Some(fields) = fields else { return };
    for member in ["attributes", "relationships"] {
        if let Some(Value::Object(m)) = resource.get_mut(member) {
            m.retain(|k, _| fields.iter().any(|f| f == k));
        }
    }
    if resource
        .get("relationships")
        .is_some_and(|r| r.as_object().is_some_and(Map::is_empty))
    {
        resource.as_object_mut().map(|o| o.remove("relationships"));
    }
}

/// A collection or linkage document with `links.self`, `links.next` and `meta.paging`.
pub(crate) struct Page<'a> {
    pub base: &'a str,
    pub path: &'a str,
    pub query: &'a Query,
    pub limit: usize,
    /// The list tag cursors are bound to.
    pub list: &'a str,
    pub next: Option<u64>,
    /// Overrides the computed `nextCursor` (the echo-cursor fault).
    pub next_cursor_override: Option<String>,
}

impl Page<'_> {
    pub(crate) fn document(&self, data: Vec<Value>, extra_links: &[(&str, String)]) -> Value {
        let self_url = if self.query.pairs.is_empty() {
            format!("{}{}", self.base, self.path)
        } else {
            format!(
                "{}{}?{}",
                self.base,
                self.path,
                crate::util::encode_query(&self.query.pairs)
            )
        };
        let mut links = json!({ "self": self_url });
        let mut paging = json!({ "limit": self.limit });
        let cursor = self
            .next_cursor_override
            .clone()
            .or_else(|| self.next.map(|p| encode_cursor(p, self.list)));
        if let Some(cursor) = cursor {
            let mut pairs: Vec<(String, String)> = self
                .query
                .pairs
                .iter()
                .filter(|(k, _)| k != "cursor")
                .cloned()
                .collect();
            pairs.push(("cursor".into(), cursor.clone()));
            links["next"] = json!(format!(
                "{}{}?{}",
                self.base,
                self.path,
                crate::util::encode_query(&pairs)
            ));
            paging["nextCursor"] = json!(cursor);
        }
        for (k, v) in extra_links {
            links[*k] = json!(v);
        }
        json!({ "data": data, "links": links, "meta": { "paging": paging } })
    }
}

/// A 200 JSON response.
pub(crate) fn ok(v: Value) -> Response {
    axum::Json(v).into_response()
}

/// A 201 JSON response.
pub(crate) fn created(v: Value) -> Response {
    (StatusCode::CREATED, axum::Json(v)).into_response()
}

/// A 204 empty response.
pub(crate) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Marks a response as one page of a paged list (for per-connection page counting).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageServed;

/// Wraps a paged document in a response tagged with [`PageServed`].
pub(crate) fn page_response(v: Value) -> Response {
    let mut r = ok(v);
    r.extensions_mut().insert(PageServed);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_is_bound_to_its_list() {
        let c = encode_cursor(4242, "orgDevices");
        assert_eq!(decode_cursor(&c, "orgDevices"), Some(4242));
        assert_eq!(decode_cursor(&c, "users"), None);
        assert_eq!(decode_cursor("garbage!", "users"), None);
    }

    #[test]
    fn take_page_reports_next_position_only_when_more_remain() {
        let (items, next) = take_page((0..10u64).map(|i| (i * 2, i)), 4, 3);
        assert_eq!(items, vec![2, 3, 4]);
        assert_eq!(next, Some(10));
        let (items, next) = take_page((0..3u64).map(|i| (i, i)), 0, 3);
        assert_eq!(items.len(), 3);
        assert_eq!(next, None);
    }

    #[test]
    fn limit_bounds() {
        assert_eq!(parse_limit("limit", None).ok(), Some(100));
        assert_eq!(parse_limit("limit", Some("1000")).ok(), Some(1000));
        assert!(parse_limit("limit", Some("1001")).is_err());
        assert!(parse_limit("limit", Some("0")).is_err());
        assert!(parse_limit("limit", Some("x")).is_err());
    }
}
