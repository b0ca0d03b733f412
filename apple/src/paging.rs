//! Cursor paging as streams.
//!
//! Design (SPEC §3.3): the next page is requested with the original parameters plus
//! `cursor=<meta.paging.nextCursor>` (replacing, never duplicating, parameters). Each [`Page`]
//! exposes the cursor it was fetched with and the next one, so a long pull can be persisted and
//! resumed after Apple drops the connection (SPEC §19.15). Three guards stop a misbehaving
//! server from looping us forever: an empty page that still has a cursor, a cursor echoed back
//! unchanged, and a page cap.

use futures::stream::{self, Stream, StreamExt as _, TryStreamExt as _};
use serde::de::DeserializeOwned;

use crate::client::Client;
use crate::error::{PagingError, Result};
use crate::model::{CollectionDocument, Cursor, Included, Links};
use crate::request::ListRequest;

/// One page of a collection.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Related resources requested with `include`.
    pub included: Vec<Included>,
    /// The cursor this page was requested with (`None` for the first page).
    pub cursor: Option<Cursor>,
    /// The cursor of the next page; `None` on the last page. Persist it to resume later.
    pub next_cursor: Option<Cursor>,
    /// Page size the server applied.
    pub limit: Option<u32>,
    /// Total count, if Apple ever sends it.
    pub total: Option<u64>,
    /// Document links.
    pub links: Option<Links>,
}

impl<T> Page<T> {
    /// Whether another page follows.
    pub fn has_next(&self) -> bool {
        self.next_cursor.is_some()
    }

    pub(crate) fn from_document(doc: CollectionDocument<T>, cursor: Option<Cursor>) -> Self {
        let paging = doc.meta.and_then(|m| m.paging);
        Self {
            items: doc.data,
            included: doc.included,
            cursor,
            next_cursor: paging.as_ref().and_then(|p| p.next_cursor.clone()),
            limit: paging.as_ref().and_then(|p| p.limit),
            total: paging.as_ref().and_then(|p| p.total),
            links: doc.links,
        }
    }
}

/// Applies the guards to a freshly fetched page; returns the cursor to continue with.
pub(crate) fn check_page<T>(
    endpoint: &'static str,
    page: &Page<T>,
) -> Result<Option<Cursor>, PagingError> {
    let Some(next) = &page.next_cursor else {
        return Ok(None);
    };
    if page.items.is_empty() {
        return Err(PagingError::EmptyPageWithCursor { endpoint });
    }
    if page.cursor.as_ref() == Some(next) {
        return Err(PagingError::CursorNotAdvancing { endpoint });
    }
    Ok(Some(next.clone()))
}

struct PageState<T> {
    req: ListRequest<T>,
    client: Client,
    /// `None` when finished; `Some(cursor)` for the next fetch.
    next: Option<Option<Cursor>>,
    fetched: u32,
    cap: u32,
}

impl<T: DeserializeOwned + Send + 'static> ListRequest<T> {
    /// Fetches one page: the first, or the one at [`ListRequest::cursor`].
    pub async fn send(&self, client: &Client) -> Result<Page<T>> {
        self.fetch(client, self.cursor.clone()).await
    }

    async fn fetch(&self, client: &Client, cursor: Option<Cursor>) -> Result<Page<T>> {
        let doc: CollectionDocument<T> = client.json(self.call(cursor.as_ref())).await?;
        Ok(Page::from_document(doc, cursor))
    }

    /// All pages as a stream, starting at [`ListRequest::cursor`] if set. Ends with an error
    /// item if a guard fires or a request fails (after its retries).
    pub fn pages(self, client: &Client) -> impl Stream<Item = Result<Page<T>>> + Send + 'static {
        let cap = self.page_cap.unwrap_or(client.config().page_cap).max(1);
        let state = PageState {
            next: Some(self.cursor.clone()),
            req: self,
            client: client.clone(),
            fetched: 0,
            cap,
        };
        stream::try_unfold(state, |mut st| async move {
            let Some(cursor) = st.next.take() else {
                return Ok(None);
            };
            if st.fetched >= st.cap {
                return Err(PagingError::PageCapReached {
                    endpoint: st.req.endpoint,
                    cap: st.cap,
                }
                .into());
            }
            let page = st.req.fetch(&st.client, cursor).await?;
            st.fetched += 1;
            st.next = check_page(st.req.endpoint, &page)?.map(Some);
            Ok(Some((page, st)))
        })
    }

    /// All items of all pages, in order.
    pub fn items(self, client: &Client) -> impl Stream<Item = Result<T>> + Send + 'static {
        self.pages(client)
            .map_ok(|page| stream::iter(page.items.into_iter().map(Ok)))
            .try_flatten()
    }

    /// Collects up to `max_items` items (then stops fetching).
    pub async fn collect_all(self, client: &Client, max_items: usize) -> Result<Vec<T>> {
        let mut out = Vec::new();
        let mut items = std::pin::pin!(self.items(client).take(max_items));
        while let Some(item) = items.next().await {
            out.push(item?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(items: Vec<u8>, cursor: Option<&str>, next: Option<&str>) -> Page<u8> {
        Page {
            items,
            included: Vec::new(),
            cursor: cursor.map(Cursor::from),
            next_cursor: next.map(Cursor::from),
            limit: None,
            total: None,
            links: None,
        }
    }

    #[test]
    fn guards() {
        assert_eq!(check_page("e", &page(vec![1], None, None)), Ok(None));
        assert_eq!(
            check_page("e", &page(vec![1], None, Some("a"))),
            Ok(Some(Cursor::from("a")))
        );
        assert_eq!(
            check_page("e", &page(vec![], Some("a"), Some("b"))),
            Err(PagingError::EmptyPageWithCursor { endpoint: "e" })
        );
        assert_eq!(
            check_page("e", &page(vec![1], Some("a"), Some("a"))),
            Err(PagingError::CursorNotAdvancing { endpoint: "e" })
        );
        assert_eq!(check_page("e", &page(vec![], Some("a"), None)), Ok(None));
    }
}
