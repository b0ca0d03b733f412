//! Typed client of the Apple Business API (and the Apple School Manager API). No Leptos, no
//! database.
//!
//! # Shape
//! * [`Client`] holds one HTTP client, the token cache and the account's shared [`Budget`];
//!   it is cheap to clone. Build it with [`Client::new`] from a [`ClientConfig`] (defaults via
//!   [`ClientConfig::apple_business`] / [`ClientConfig::apple_school`]) and a [`PrivateKey`]
//!   ([`PrivateKey::from_pem`]).
//! * Requests are values: `resources::org_devices::list().limit(1000).fields(["serialNumber"])`
//!   then `.send(&client)` for one page, `.pages(&client)` / `.items(&client)` for streams.
//!   Writes (`resources::activities::assign(..)`, `resources::blueprints::create(..)`, ...)
//!   are sent once and never replayed automatically.
//! * Every call waits for the account [`Budget`] (GET and write buckets, [`Priority`]),
//!   gets a cached token, and runs under the pure [`retry::decide`] policy.
//! * Errors are [`Error`]; metrics go to an [`Observer`].
//!
//! Secrets (the private key, access tokens, assertions) never appear in `Debug`, `Display`,
//! errors or logs.
//!
//! # Example
//! ```no_run
//! use std::sync::Arc;
//! use futures::TryStreamExt as _;
//! use apple::resources::{activities, org_devices};
//! use apple::{Budget, BudgetConfig, Client, ClientConfig, MdmServerId, Priority, PrivateKey};
//!
//! # async fn demo(pem: &str) -> apple::Result<()> {
//! let config = ClientConfig::apple_business("BUSINESSAPI.<uuid>", "<key id>");
//! let budget = Arc::new(Budget::new(BudgetConfig::default())); // one per API account
//! let client = Client::new(config, PrivateKey::from_pem(pem)?, budget)?;
//! client.test_connection().await?;
//!
//! // Page through all devices in the background, persisting the cursor of each page.
//! let mut pages = std::pin::pin!(
//!     org_devices::list().limit(1000).priority(Priority::Background).pages(&client)
//! );
//! while let Some(page) = pages.try_next().await? {
//!     let _resume_from = page.next_cursor.clone(); // save; later: `.cursor(saved)`
//!     for device in page.items {
//!         let _status = device.attributes.status;
//!     }
//! }
//!
//! // Writes are sent once; on failure, check state before trying again.
//! let serials = [apple::SerialNumber::new("XABC123X0ABC123X0")];
//! let activity = activities::assign(&MdmServerId::new("1F97..."), &serials).send(&client).await?;
//! let _id = activity.data.id;
//! # Ok(())
//! # }
//! ```

pub mod activity_log;
pub mod auth;
pub mod budget;
mod client;
pub mod config;
pub mod error;
#[cfg(test)]
mod fixture_tests;
pub mod model;
pub mod observer;
pub mod paging;
pub mod request;
pub mod resources;
pub mod retry;

pub use auth::PrivateKey;
pub use budget::{Budget, BudgetConfig, BudgetStatus, InFlight, Priority, Rate, RequestClass};
pub use client::{Client, ClientBuilder};
pub use config::{ClientConfig, RetryConfig, Timeouts};
pub use error::{ApiErrorObject, Error, KeyError, PagingError, Result, TokenError};
pub use model::{
    ActivityId, AppId, AppleCareCoverageId, AuditEventId, BlueprintId, ConfigurationId, Cursor,
    Document, MdmDeviceId, MdmServerId, OrganizationalUnitId, PackageId, RawResource,
    ResourceIdentifier, SerialNumber, UserGroupId, UserId,
};
pub use observer::{AttemptEvent, AttemptOutcome, NoopObserver, Observer};
pub use paging::Page;
pub use request::{GetRequest, ListRequest, WriteRequest};
