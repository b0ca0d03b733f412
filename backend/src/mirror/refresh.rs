//! "Refresh from Apple" for one device's record: what Apple says of it now, without waiting
//! for the next sync. Three calls side by side, at interactive priority, through the API
//! account that last returned the device: the record (`GET /v1/orgDevices/{id}`), its
//! service (`…/relationships/assignedServer`) and Apple's audit events about it
//! (`GET /v1/auditEvents?filter[subjectId]=…` over the configured history).
//!
//! The mirror is then changed the way a sync would change it: the record written only if
//! it differs, a device Apple released (or no longer knows) marked absent, never deleted,
//! new events stored by id. The search index is told about the row. AppleCare coverage and Activation
//! Lock are refreshed beside this, by [`super::coverage`].

use std::time::Duration;

use apple::resources::org_devices;
use apple::{Priority, SerialNumber};
use time::OffsetDateTime;

use super::DeviceAttributes;
use super::coverage::{CoverageError, apple_error};
use super::directory::{AuditEventRecord, audit_events_between};
use super::index::DeviceIndex;
use crate::accounts::Clients;
use crate::orgs::OrgId;
use crate::store::Store;

/// Events of one device read per refresh (Apple's page size; a device's story is shorter).
const MAX_EVENTS: usize = 1000;

/// What a refresh changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refreshed {
    /// The record or its service differed from the mirror's and was written.
    pub changed: bool,
    /// Apple no longer knows the device: it is now marked absent.
    pub released: bool,
    /// Audit events Orchard did not have.
    pub new_events: u64,
    /// Apple's audit events could not be read (the reason); the record was refreshed.
    pub events_problem: Option<String>,
}

/// Reads the device's record, service and audit events from Apple now and updates the
/// mirror. `NotMirrored` when Orchard has never seen the device (there is no account to ask
/// through).
pub async fn device(
    store: &dyn Store,
    clients: &Clients,
    index: &DeviceIndex,
    org: OrgId,
    serial: &str,
    audit_history: Duration,
    now: i64,
) -> Result<Refreshed, CoverageError> {
    let known = store
        .devices_by_serials(org, &[serial.to_owned()])
        .await?
        .into_iter()
        .next()
        .ok_or(CoverageError::NotMirrored)?;
    let client = clients.for_account(known.account_id).await?;
    let serial_number = SerialNumber::new(known.serial.as_str());
    let since = now - i64::try_from(audit_history.as_secs()).unwrap_or(i64::MAX / 2);
    let record = org_devices::get(&serial_number).priority(Priority::Interactive);
    let server = org_devices::assigned_server_id(&serial_number).priority(Priority::Interactive);
    let events = audit_events_between(since, now + 1)
        .subject_id(known.serial.as_str())
        .limit(MAX_EVENTS as u32)
        .priority(Priority::Interactive)
        .collect_all(&client, MAX_EVENTS);
    let (record, server, events) = tokio::join!(record.send(&client), server.send(&client), events);

    let mut refreshed = Refreshed {
        changed: false,
        released: false,
        new_events: 0,
        events_problem: None,
    };
    match record {
        Err(apple::Error::NotFound { .. }) => {
            refreshed.released = store.mark_device_absent(org, &known.serial, now).await?;
            refreshed.changed = refreshed.released;
        }
        Err(err) => return Err(apple_error(&err)),
        // Apple keeps answering for a released device on this one call, with the date
        // (SPEC §7.3); the lists leave it out, so a sync would mark it absent too.
        Ok(doc) if doc.data.attributes.released_from_org_date_time.is_some() => {
            let since = doc
                .data
                .attributes
                .released_from_org_date_time
                .map_or(now, OffsetDateTime::unix_timestamp);
            refreshed.released = store.mark_device_absent(org, &known.serial, since).await?;
            refreshed.changed = refreshed.released;
        }
        Ok(doc) => {
            let device = DeviceAttributes::from_apple(&doc.data);
            let service = match server {
                Ok(doc) => doc.data.map(|s| s.id),
                // Released between the two calls: the record is still worth keeping.
                Err(apple::Error::NotFound { .. }) => None,
                Err(err) => return Err(apple_error(&err)),
            };
            refreshed.changed = store
                .refresh_device(org, known.account_id, &device, service.as_deref(), now)
                .await?;
        }
    }
    match events {
        Ok(events) => {
            let records: Vec<AuditEventRecord> = events
                .iter()
                .map(|e| AuditEventRecord::from_apple(e, since))
                .collect();
            refreshed.new_events = store
                .store_audit_page(org, known.account_id, None, &records)
                .await?;
        }
        Err(err) => refreshed.events_problem = Some(apple_error(&err).to_string()),
    }
    if refreshed.changed {
        let rows = store
            .devices_by_serial(org, std::slice::from_ref(&known.serial))
            .await?;
        index.apply(org, &rows);
    }
    Ok(refreshed)
}
