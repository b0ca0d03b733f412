//! Typed request values: build with methods, then `send(&client)`.
//!
//! Design: four generic shapes cover all 57 endpoints: [`ListRequest`] (collections and
//! linkages, paged, see [`crate::paging`]), [`GetRequest`] (one document), and
//! [`WriteRequest`] (POST/PATCH/DELETE with an optional JSON body, answering a document or 204).
//! The per-resource modules only pick the path, the endpoint name and the types, so the wire
//! behaviour (query encoding, budget class, retry rules) is written once.

use std::marker::PhantomData;

use bytes::Bytes;
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::budget::Priority;
use crate::client::{Call, Client, Target};
use crate::error::{Error, Result};
use crate::model::{Cursor, Document, RawResource, Resource};

/// A resource type with a `fields[<type>]` sparse fieldset parameter.
pub trait ResourceType {
    /// The JSON:API type name, e.g. `orgDevices`.
    const TYPE: &'static str;
}

impl<I, A: ResourceType> ResourceType for Resource<I, A> {
    const TYPE: &'static str = A::TYPE;
}

/// Sets `key=value`, replacing an earlier value so parameters are never duplicated (a
/// duplicated parameter is a classic 400 in Apple's JSON:API services, SPEC §3.3).
pub(crate) fn set_param(query: &mut Vec<(String, String)>, key: String, value: String) {
    query.retain(|(k, _)| *k != key);
    query.push((key, value));
}

pub(crate) fn join_fields<I, S>(fields: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    fields
        .into_iter()
        .map(|f| f.as_ref().to_owned())
        .collect::<Vec<_>>()
        .join(",")
}

/// A collection or linkage GET. Page through it with [`ListRequest::pages`] or
/// [`ListRequest::items`], or fetch one page with [`ListRequest::send`].
#[derive(Debug)]
pub struct ListRequest<T> {
    pub(crate) endpoint: &'static str,
    pub(crate) path: String,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) cursor: Option<Cursor>,
    pub(crate) priority: Priority,
    pub(crate) page_cap: Option<u32>,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for ListRequest<T> {
    fn clone(&self) -> Self {
        Self {
            endpoint: self.endpoint,
            path: self.path.clone(),
            query: self.query.clone(),
            cursor: self.cursor.clone(),
            priority: self.priority,
            page_cap: self.page_cap,
            _t: PhantomData,
        }
    }
}

impl<T> ListRequest<T> {
    pub(crate) fn new(endpoint: &'static str, path: String) -> Self {
        Self {
            endpoint,
            path,
            query: Vec::new(),
            cursor: None,
            priority: Priority::Interactive,
            page_cap: None,
            _t: PhantomData,
        }
    }

    /// Page size, clamped to Apple's 1..=1000 (default on Apple's side: 100).
    pub fn limit(mut self, limit: u32) -> Self {
        set_param(
            &mut self.query,
            "limit".to_owned(),
            limit.clamp(1, 1000).to_string(),
        );
        self
    }

    /// Starts (or resumes) from a saved cursor, e.g. [`crate::Page::next_cursor`] persisted
    /// after the last page that was processed.
    pub fn cursor(mut self, cursor: Cursor) -> Self {
        self.cursor = Some(cursor);
        self
    }

    /// Budget priority (default [`Priority::Interactive`]; sync jobs use `Background`).
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// Overrides the client's page cap for this stream.
    pub fn page_cap(mut self, cap: u32) -> Self {
        self.page_cap = Some(cap);
        self
    }

    /// Adds an arbitrary query parameter, replacing an earlier one of the same name. For
    /// parameters this client does not model yet (e.g. the undocumented `filter[serialNumber]`).
    pub fn param(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        set_param(&mut self.query, key.into(), value.into());
        self
    }

    /// The endpoint name used in errors and metrics.
    pub fn endpoint(&self) -> &'static str {
        self.endpoint
    }

    /// The same request, its items decoded as [`RawResource`]s: every attribute Apple sent,
    /// known to this crate or not. What a mirror stores.
    pub fn raw(self) -> ListRequest<RawResource> {
        ListRequest {
            endpoint: self.endpoint,
            path: self.path,
            query: self.query,
            cursor: self.cursor,
            priority: self.priority,
            page_cap: self.page_cap,
            _t: PhantomData,
        }
    }

    pub(crate) fn call(&self, cursor: Option<&Cursor>) -> Call {
        let mut query = self.query.clone();
        if let Some(c) = cursor {
            set_param(&mut query, "cursor".to_owned(), c.as_str().to_owned());
        }
        Call {
            endpoint: self.endpoint,
            method: Method::GET,
            target: Target::Path(self.path.clone()),
            query,
            body: None,
            priority: self.priority,
        }
    }
}

impl<T: ResourceType> ListRequest<T> {
    /// Sparse fieldset: only these attributes/relationships are returned (`fields[<type>]`).
    pub fn fields<I, S>(mut self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        set_param(
            &mut self.query,
            format!("fields[{}]", T::TYPE),
            join_fields(fields),
        );
        self
    }
}

/// A GET of one document.
#[derive(Debug)]
pub struct GetRequest<T> {
    pub(crate) endpoint: &'static str,
    pub(crate) path: String,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) priority: Priority,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for GetRequest<T> {
    fn clone(&self) -> Self {
        Self {
            endpoint: self.endpoint,
            path: self.path.clone(),
            query: self.query.clone(),
            priority: self.priority,
            _t: PhantomData,
        }
    }
}

impl<T: DeserializeOwned> GetRequest<T> {
    pub(crate) fn new(endpoint: &'static str, path: String) -> Self {
        Self {
            endpoint,
            path,
            query: Vec::new(),
            priority: Priority::Interactive,
            _t: PhantomData,
        }
    }

    /// Budget priority (default [`Priority::Interactive`]).
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// Adds an arbitrary query parameter, replacing an earlier one of the same name.
    pub fn param(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        set_param(&mut self.query, key.into(), value.into());
        self
    }

    /// Sends the request.
    pub async fn send(&self, client: &Client) -> Result<Document<T>> {
        client
            .json(Call {
                endpoint: self.endpoint,
                method: Method::GET,
                target: Target::Path(self.path.clone()),
                query: self.query.clone(),
                body: None,
                priority: self.priority,
            })
            .await
    }
}

impl<T: ResourceType> GetRequest<T> {
    /// Sparse fieldset (`fields[<type>]`).
    pub fn fields<I, S>(mut self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        set_param(
            &mut self.query,
            format!("fields[{}]", T::TYPE),
            join_fields(fields),
        );
        self
    }
}

/// How a write answers.
pub trait WriteResponse: Sized {
    /// Builds the answer from a 2xx body.
    fn from_body(endpoint: &'static str, body: &[u8]) -> Result<Self>;
}

impl WriteResponse for () {
    fn from_body(_: &'static str, _: &[u8]) -> Result<Self> {
        Ok(())
    }
}

impl<T: DeserializeOwned> WriteResponse for Document<T> {
    fn from_body(endpoint: &'static str, body: &[u8]) -> Result<Self> {
        Client::decode(endpoint, body)
    }
}

/// A POST, PATCH or DELETE. Never re-sent automatically (see [`crate::retry`]): on a transport
/// error or 5xx the caller must check state (e.g. read the activity) before trying again.
#[derive(Debug, Clone)]
pub struct WriteRequest<B, R> {
    pub(crate) endpoint: &'static str,
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) body: Option<B>,
    pub(crate) priority: Priority,
    _r: PhantomData<fn() -> R>,
}

impl<B: Serialize, R: WriteResponse> WriteRequest<B, R> {
    pub(crate) fn new(
        endpoint: &'static str,
        method: Method,
        path: String,
        body: Option<B>,
    ) -> Self {
        Self {
            endpoint,
            method,
            path,
            body,
            priority: Priority::Interactive,
            _r: PhantomData,
        }
    }

    /// Budget priority (default [`Priority::Interactive`]).
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// The request body as it will be sent.
    pub fn body(&self) -> Option<&B> {
        self.body.as_ref()
    }

    /// Sends the request once.
    pub async fn send(&self, client: &Client) -> Result<R> {
        let body = match &self.body {
            Some(b) => Some(Bytes::from(serde_json::to_vec(b).map_err(|e| {
                Error::Decode {
                    endpoint: self.endpoint,
                    path: "<request body>".to_owned(),
                    source: e,
                }
            })?)),
            None => None,
        };
        let raw = client
            .execute(Call {
                endpoint: self.endpoint,
                method: self.method.clone(),
                target: Target::Path(self.path.clone()),
                query: Vec::new(),
                body,
                priority: self.priority,
            })
            .await?;
        R::from_body(self.endpoint, &raw.body)
    }
}
