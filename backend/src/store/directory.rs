//! Storage of the directory part of the mirror ([`crate::mirror::directory`]): objects,
//! memberships and Apple's audit events, written page by page with the run's checkpoint in
//! the same transaction, as the devices are ([`super::mirror`]).

use async_trait::async_trait;
use uuid::Uuid;

use super::mirror::{Checkpoint, StoredHash};
use super::search::Dialect;
use super::{PostgresStore, Result, SqliteStore, StoreError, count, still_running};
use crate::accounts::ApiAccountId;
use crate::mirror::directory::{
    AuditEventRecord, DirectoryObject, KindCount, MemberList, ObjectKind, ObjectSummary,
};
use crate::mirror::sync::RunId;
use crate::orgs::OrgId;

/// The columns of [`AuditEventRecord`], in its field order.
pub(super) const AUDIT_COLUMNS: &str = "id, occurred_at, event_type, category, actor_type, \
    actor_id, actor_name, subject_type, subject_id, subject_name, outcome, serial, data";

#[async_trait]
pub trait DirectoryStore: Send + Sync {
    /// Stored hashes of the given objects of a kind (absent from the result: not stored).
    async fn object_hashes(
        &self,
        org: OrgId,
        kind: ObjectKind,
        ids: &[&str],
    ) -> Result<Vec<(String, StoredHash)>>;

    /// In one transaction: inserts or updates `changed` (clearing their absence), records
    /// the page's ids for the end of the list, and advances the checkpoint. When `last`
    /// (the list's final page), also marks the account's objects of the kind that the run
    /// did not see absent since `checkpoint.now`, drops the memberships of absent owners and
    /// forgets the list's ids. Returns how many objects became absent.
    async fn store_object_page(
        &self,
        org: OrgId,
        account: ApiAccountId,
        checkpoint: &Checkpoint,
        kind: ObjectKind,
        page_ids: &[&str],
        changed: &[DirectoryObject],
        last: bool,
    ) -> Result<u64>;

    /// The account's objects of a kind that are not absent, by id: the owners whose
    /// memberships a run reads, in an order stable across a restart.
    async fn present_object_ids(
        &self,
        org: OrgId,
        account: ApiAccountId,
        kind: ObjectKind,
    ) -> Result<Vec<String>>;

    /// In one transaction: records one page of a membership list and advances the
    /// checkpoint; on the `last` page, makes the stored members of the list exactly the ids
    /// of all its pages (inserting the new, deleting the gone, leaving the others alone) and
    /// forgets the list's ids.
    async fn store_member_page(
        &self,
        org: OrgId,
        checkpoint: &Checkpoint,
        list: &MemberList,
        member_ids: &[&str],
        last: bool,
    ) -> Result<()>;

    /// Moves a run's checkpoint without storing a page (a list skipped because Apple
    /// refused it); forgets the ids the run stored for `forget`, if any.
    async fn skip_sync_list(&self, checkpoint: &Checkpoint, forget: Option<&str>) -> Result<()>;

    /// In one transaction: stores the audit events not stored yet and advances the
    /// checkpoint, if the page is a run's. Returns how many were new.
    async fn store_audit_page(
        &self,
        org: OrgId,
        account: ApiAccountId,
        checkpoint: Option<&Checkpoint>,
        events: &[AuditEventRecord],
    ) -> Result<u64>;

    /// Up to when the account's audit events are mirrored.
    async fn audit_synced_until(&self, account: ApiAccountId) -> Result<Option<i64>>;

    /// In one transaction: records that the account's audit events are mirrored up to
    /// `audit_until` (when given) and marks the run succeeded.
    async fn complete_sync_run(
        &self,
        run: RunId,
        account: ApiAccountId,
        audit_until: Option<i64>,
        now: i64,
    ) -> Result<()>;

    /// The objects of a kind, absent ones included, by name.
    async fn objects(&self, org: OrgId, kind: ObjectKind) -> Result<Vec<ObjectSummary>>;

    /// The stored members of one membership list, by id.
    async fn members(
        &self,
        org: OrgId,
        owner_kind: ObjectKind,
        owner_id: &str,
        rel: &str,
    ) -> Result<Vec<String>>;

    /// The objects of `owner_kind` that have `member_id` among their `rel` members (e.g. the
    /// Blueprints of a device: `Blueprints`, `orgDevices`, serial), by name.
    async fn owners_of(
        &self,
        org: OrgId,
        owner_kind: ObjectKind,
        rel: &str,
        member_id: &str,
    ) -> Result<Vec<ObjectSummary>>;

    /// The device's audit events from Apple, newest first.
    async fn device_audit_events(
        &self,
        org: OrgId,
        serial: &str,
        limit: u32,
    ) -> Result<Vec<AuditEventRecord>>;

    /// How many objects of each kind the account last returned (not absent); kinds with
    /// none are left out.
    async fn object_counts(&self, org: OrgId, account: ApiAccountId) -> Result<Vec<KindCount>>;
}

/// An [`ObjectSummary`] row.
#[derive(sqlx::FromRow)]
pub(super) struct SummaryRow {
    pub kind: String,
    pub id: String,
    pub name: String,
    pub absent_since: Option<i64>,
}

impl TryFrom<SummaryRow> for ObjectSummary {
    type Error = super::StoreError;

    fn try_from(r: SummaryRow) -> Result<Self> {
        Ok(Self {
            kind: ObjectKind::parse(&r.kind).ok_or_else(|| {
                super::StoreError::Corrupt(format!("mirror_objects.kind: {}", r.kind))
            })?,
            id: r.id,
            name: r.name,
            absent_since: r.absent_since,
        })
    }
}

/// An [`AuditEventRecord`] row.
#[derive(sqlx::FromRow)]
pub(super) struct AuditRow {
    pub id: String,
    pub occurred_at: i64,
    pub event_type: String,
    pub category: Option<String>,
    pub actor_type: Option<String>,
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    pub subject_type: Option<String>,
    pub subject_id: Option<String>,
    pub subject_name: Option<String>,
    pub outcome: Option<String>,
    pub serial: Option<String>,
    pub data: Option<String>,
}

impl From<AuditRow> for AuditEventRecord {
    fn from(r: AuditRow) -> Self {
        Self {
            id: r.id,
            occurred_at: r.occurred_at,
            event_type: r.event_type,
            category: r.category,
            actor_type: r.actor_type,
            actor_id: r.actor_id,
            actor_name: r.actor_name,
            subject_type: r.subject_type,
            subject_id: r.subject_id,
            subject_name: r.subject_name,
            outcome: r.outcome,
            serial: r.serial,
            data: r.data,
        }
    }
}

/// The ids of a page as stored in `sync_run_ids`: a JSON array, which both databases can
/// take apart in SQL (`json_each`, `jsonb_array_elements_text`).
pub(super) fn ids_json(ids: &[&str]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".to_owned())
}

/// Spells a statement for `dialect`: `{run_ids}` becomes the subquery of the ids a run
/// stored for a list (two placeholders: run, list; one column, `member`), `{in_ids}` the
/// ids of a JSON array bound as text, and each `?` stays SQLite's or becomes PostgreSQL's
/// `$n`.
fn sql(dialect: Dialect, template: &str) -> String {
    let template = match dialect {
        Dialect::Sqlite => template
            .replace(
                "{run_ids}",
                "SELECT j.value AS member FROM sync_run_ids r, json_each(r.ids) j \
                 WHERE r.run_id = ? AND r.list = ?",
            )
            .replace("{in_ids}", "(SELECT value FROM json_each(?))"),
        Dialect::Postgres => template
            .replace(
                "{run_ids}",
                "SELECT jsonb_array_elements_text(r.ids::jsonb) AS member \
                 FROM sync_run_ids r WHERE r.run_id = ? AND r.list = ?",
            )
            .replace("{in_ids}", "(SELECT jsonb_array_elements_text(?::jsonb))"),
    };
    let template = template.replace("{audit_columns}", AUDIT_COLUMNS);
    if dialect == Dialect::Sqlite {
        return template;
    }
    let mut out = String::with_capacity(template.len() + 16);
    let mut n = 0;
    for c in template.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

/// Counts in [`ObjectKind::ALL`] order; unknown kinds (a newer Orchard's) are left out.
fn kind_counts(rows: Vec<(String, i64)>) -> Vec<KindCount> {
    ObjectKind::ALL
        .into_iter()
        .filter_map(|kind| {
            rows.iter()
                .find(|(k, _)| k == kind.as_str())
                .map(|(_, n)| KindCount {
                    kind,
                    present: count(*n),
                })
        })
        .collect()
}

/// The upsert of changed objects, around its `VALUES` rows.
const UPSERT_OBJECTS_HEAD: &str = "INSERT INTO mirror_objects (org_id, kind, id, account_id, name, \
    attributes, content_hash, first_seen_at, changed_at, absent_since) ";
const UPSERT_OBJECTS_TAIL: &str = " ON CONFLICT (org_id, kind, id) DO UPDATE SET \
    account_id = excluded.account_id, name = excluded.name, attributes = excluded.attributes, \
    content_hash = excluded.content_hash, changed_at = excluded.changed_at, absent_since = NULL";

/// Stored hashes of some objects of a kind.
const OBJECT_HASHES: &str = "SELECT id, content_hash, absent_since IS NOT NULL FROM mirror_objects \
    WHERE org_id = ? AND kind = ? AND id IN {in_ids}";

/// The end of a list: the account's objects of the kind the run did not see become absent.
const MARK_ABSENT: &str = "UPDATE mirror_objects SET absent_since = ? WHERE org_id = ? AND kind = \
    ? AND account_id = ? AND absent_since IS NULL AND id NOT IN ({run_ids})";

/// Absent owners keep no members.
const DROP_MEMBERS_OF_ABSENT: &str = "DELETE FROM mirror_members WHERE org_id = ? AND owner_kind = \
    ? AND owner_id IN (SELECT id FROM mirror_objects WHERE org_id = ? AND kind = ? AND \
    absent_since IS NOT NULL)";

/// The account's present objects of a kind.
const PRESENT_IDS: &str = "SELECT id FROM mirror_objects WHERE org_id = ? AND kind = ? AND \
    account_id = ? AND absent_since IS NULL ORDER BY id";

/// The end of a membership list: members Apple no longer lists go.
const DELETE_GONE_MEMBERS: &str = "DELETE FROM mirror_members WHERE org_id = ? AND owner_kind = ? \
    AND owner_id = ? AND rel = ? AND member_id NOT IN ({run_ids})";

/// The end of a membership list: members Apple lists are added (existing ones untouched).
const INSERT_NEW_MEMBERS: &str = "INSERT INTO mirror_members (org_id, owner_kind, owner_id, rel, \
    member_id) SELECT DISTINCT ?, ?, ?, ?, ids.member FROM ({run_ids}) AS ids WHERE true ON \
    CONFLICT DO NOTHING";

/// Moves a run on without a page.
const MOVE_RUN: &str = "UPDATE sync_runs SET phase = ?, cursor = ?, service_index = ?, \
    rate_limited = rate_limited + ?, budget_wait_ms = budget_wait_ms + ?, updated_at = ? WHERE \
    id = ? AND state = 'running'";

/// Up to when an account's audit events are mirrored.
const SET_AUDIT_STATE: &str = "INSERT INTO mirror_audit_state (account_id, synced_until) VALUES \
    (?, ?) ON CONFLICT (account_id) DO UPDATE SET synced_until = excluded.synced_until";

/// Marks a run succeeded.
const COMPLETE_RUN: &str = "UPDATE sync_runs SET state = 'succeeded', cursor = NULL, updated_at = \
    ?, finished_at = ?, error = NULL WHERE id = ? AND state = 'running'";

/// The objects of a kind.
const OBJECTS: &str = "SELECT kind, id, name, absent_since FROM mirror_objects WHERE org_id = ? \
    AND kind = ? ORDER BY name, id";

/// The members of one list.
const MEMBERS: &str = "SELECT member_id FROM mirror_members WHERE org_id = ? AND owner_kind = ? \
    AND owner_id = ? AND rel = ? ORDER BY member_id";

/// The owners of a kind that have a member.
const OWNERS_OF: &str = "SELECT o.kind, o.id, o.name, o.absent_since FROM mirror_members m JOIN \
    mirror_objects o ON o.org_id = m.org_id AND o.kind = m.owner_kind AND o.id = m.owner_id \
    WHERE m.org_id = ? AND m.rel = ? AND m.member_id = ? AND m.owner_kind = ? ORDER BY o.name, \
    o.id";

/// A device's audit events, newest first.
const DEVICE_EVENTS: &str = "SELECT {audit_columns} FROM mirror_audit_events WHERE org_id = ? AND \
    serial = ? ORDER BY occurred_at DESC, id DESC LIMIT ?";

/// Present objects per kind of an account.
const KIND_COUNTS: &str = "SELECT kind, COUNT(*) FROM mirror_objects WHERE org_id = ? AND \
    account_id = ? AND absent_since IS NULL GROUP BY kind";

/// Objects per multi-row upsert (10 parameters each).
const UPSERT_ROWS: usize = 500;
/// Audit events per multi-row insert (15 parameters each).
const AUDIT_ROWS: usize = 500;

/// Records one page of a list's ids inside the page's transaction.
macro_rules! add_ids {
    ($tx:ident, $run:expr, $list:expr, $ids:expr) => {
        sqlx::query(&sql(
            DIALECT,
            "INSERT INTO sync_run_ids (run_id, seq, list, ids) VALUES \
             (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM sync_run_ids WHERE run_id = ?), ?, ?)",
        ))
        .bind($run.0)
        .bind($run.0)
        .bind($list)
        .bind(ids_json($ids))
        .execute(&mut *$tx)
        .await
        .map_err(StoreError::Database)?;
    };
}

/// Forgets the ids a run stored for a list, inside a transaction.
macro_rules! forget_ids {
    ($tx:ident, $run:expr, $list:expr) => {
        sqlx::query(&sql(
            DIALECT,
            "DELETE FROM sync_run_ids WHERE run_id = ? AND list = ?",
        ))
        .bind($run.0)
        .bind($list)
        .execute(&mut *$tx)
        .await
        .map_err(StoreError::Database)?;
    };
}

/// Implements [`DirectoryStore`] for a store with a `pool`: `$db` its sqlx database,
/// `$begin` the statement opening a page's transaction, `$advance` its checkpoint update,
/// `$id` how a UUID binds (text on SQLite, native on PostgreSQL).
macro_rules! directory_store {
    ($module:ident, $store:ty, $db:ty, $dialect:expr, $begin:literal, $advance:path, $id:expr) => {
        mod $module {
            use super::*;

            const DIALECT: Dialect = $dialect;

            #[async_trait]
            impl DirectoryStore for $store {
                async fn object_hashes(
                    &self,
                    org: OrgId,
                    kind: ObjectKind,
                    ids: &[&str],
                ) -> Result<Vec<(String, StoredHash)>> {
                    let rows: Vec<(String, i64, bool)> =
                        sqlx::query_as(&sql(DIALECT, OBJECT_HASHES))
                            .bind(($id)(org.0))
                            .bind(kind.as_str())
                            .bind(ids_json(ids))
                            .fetch_all(&self.pool)
                            .await
                            .map_err(StoreError::Database)?;
                    Ok(rows
                        .into_iter()
                        .map(|(id, content_hash, absent)| {
                            let hash = StoredHash {
                                content_hash,
                                absent,
                            };
                            (id, hash)
                        })
                        .collect())
                }

                async fn store_object_page(
                    &self,
                    org: OrgId,
                    account: ApiAccountId,
                    checkpoint: &Checkpoint,
                    kind: ObjectKind,
                    page_ids: &[&str],
                    changed: &[DirectoryObject],
                    last: bool,
                ) -> Result<u64> {
                    let org = ($id)(org.0);
                    let account = ($id)(account.0);
                    let now = checkpoint.now;
                    let mut tx = self
                        .pool
                        .begin_with($begin)
                        .await
                        .map_err(StoreError::Database)?;
                    for chunk in changed.chunks(UPSERT_ROWS) {
                        let mut q = sqlx::QueryBuilder::<$db>::new(UPSERT_OBJECTS_HEAD);
                        q.push_values(chunk, |mut row, o| {
                            row.push_bind(&org)
                                .push_bind(kind.as_str())
                                .push_bind(&o.id)
                                .push_bind(&account)
                                .push_bind(&o.name)
                                .push_bind(&o.attributes)
                                .push_bind(o.content_hash)
                                .push_bind(now)
                                .push_bind(now)
                                .push_bind(None::<i64>);
                        });
                        q.push(UPSERT_OBJECTS_TAIL);
                        q.build()
                            .execute(&mut *tx)
                            .await
                            .map_err(StoreError::Database)?;
                    }
                    add_ids!(tx, checkpoint.run, kind.as_str(), page_ids);
                    let mut gone = 0;
                    if last {
                        gone = sqlx::query(&sql(DIALECT, MARK_ABSENT))
                            .bind(now)
                            .bind(&org)
                            .bind(kind.as_str())
                            .bind(&account)
                            .bind(checkpoint.run.0)
                            .bind(kind.as_str())
                            .execute(&mut *tx)
                            .await
                            .map_err(StoreError::Database)?
                            .rows_affected();
                        sqlx::query(&sql(DIALECT, DROP_MEMBERS_OF_ABSENT))
                            .bind(&org)
                            .bind(kind.as_str())
                            .bind(&org)
                            .bind(kind.as_str())
                            .execute(&mut *tx)
                            .await
                            .map_err(StoreError::Database)?;
                        forget_ids!(tx, checkpoint.run, kind.as_str());
                    }
                    $advance(&mut tx, checkpoint, 0, 0).await?;
                    tx.commit().await.map_err(StoreError::Database)?;
                    Ok(gone)
                }

                async fn present_object_ids(
                    &self,
                    org: OrgId,
                    account: ApiAccountId,
                    kind: ObjectKind,
                ) -> Result<Vec<String>> {
                    sqlx::query_scalar(&sql(DIALECT, PRESENT_IDS))
                        .bind(($id)(org.0))
                        .bind(kind.as_str())
                        .bind(($id)(account.0))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(StoreError::Database)
                }

                async fn store_member_page(
                    &self,
                    org: OrgId,
                    checkpoint: &Checkpoint,
                    list: &MemberList,
                    member_ids: &[&str],
                    last: bool,
                ) -> Result<()> {
                    let org = ($id)(org.0);
                    let key = list.key();
                    let mut tx = self
                        .pool
                        .begin_with($begin)
                        .await
                        .map_err(StoreError::Database)?;
                    add_ids!(tx, checkpoint.run, &key, member_ids);
                    if last {
                        sqlx::query(&sql(DIALECT, DELETE_GONE_MEMBERS))
                            .bind(&org)
                            .bind(list.owner_kind.as_str())
                            .bind(&list.owner_id)
                            .bind(list.rel)
                            .bind(checkpoint.run.0)
                            .bind(&key)
                            .execute(&mut *tx)
                            .await
                            .map_err(StoreError::Database)?;
                        sqlx::query(&sql(DIALECT, INSERT_NEW_MEMBERS))
                            .bind(&org)
                            .bind(list.owner_kind.as_str())
                            .bind(&list.owner_id)
                            .bind(list.rel)
                            .bind(checkpoint.run.0)
                            .bind(&key)
                            .execute(&mut *tx)
                            .await
                            .map_err(StoreError::Database)?;
                        forget_ids!(tx, checkpoint.run, &key);
                    }
                    $advance(&mut tx, checkpoint, 0, 0).await?;
                    tx.commit().await.map_err(StoreError::Database)
                }

                async fn skip_sync_list(
                    &self,
                    checkpoint: &Checkpoint,
                    forget: Option<&str>,
                ) -> Result<()> {
                    let mut tx = self
                        .pool
                        .begin_with($begin)
                        .await
                        .map_err(StoreError::Database)?;
                    if let Some(list) = forget {
                        forget_ids!(tx, checkpoint.run, list);
                    }
                    let done = sqlx::query(&sql(DIALECT, MOVE_RUN))
                        .bind(checkpoint.phase.as_str())
                        .bind(&checkpoint.cursor)
                        .bind(i64::from(checkpoint.service_index))
                        .bind(i64::try_from(checkpoint.rate_limited).unwrap_or(i64::MAX))
                        .bind(i64::try_from(checkpoint.budget_wait_ms).unwrap_or(i64::MAX))
                        .bind(checkpoint.now)
                        .bind(checkpoint.run.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::Database)?;
                    still_running(done.rows_affected())?;
                    tx.commit().await.map_err(StoreError::Database)
                }

                async fn store_audit_page(
                    &self,
                    org: OrgId,
                    account: ApiAccountId,
                    checkpoint: Option<&Checkpoint>,
                    events: &[AuditEventRecord],
                ) -> Result<u64> {
                    let org = ($id)(org.0);
                    let account = ($id)(account.0);
                    let mut tx = self
                        .pool
                        .begin_with($begin)
                        .await
                        .map_err(StoreError::Database)?;
                    let mut new = 0;
                    for chunk in events.chunks(AUDIT_ROWS) {
                        let mut q = sqlx::QueryBuilder::<$db>::new(format!(
                            "INSERT INTO mirror_audit_events (org_id, account_id, {AUDIT_COLUMNS}) "
                        ));
                        q.push_values(chunk, |mut row, e| {
                            row.push_bind(&org)
                                .push_bind(&account)
                                .push_bind(&e.id)
                                .push_bind(e.occurred_at)
                                .push_bind(&e.event_type)
                                .push_bind(&e.category)
                                .push_bind(&e.actor_type)
                                .push_bind(&e.actor_id)
                                .push_bind(&e.actor_name)
                                .push_bind(&e.subject_type)
                                .push_bind(&e.subject_id)
                                .push_bind(&e.subject_name)
                                .push_bind(&e.outcome)
                                .push_bind(&e.serial)
                                .push_bind(&e.data);
                        });
                        q.push(" ON CONFLICT (org_id, id) DO NOTHING");
                        new += q
                            .build()
                            .execute(&mut *tx)
                            .await
                            .map_err(StoreError::Database)?
                            .rows_affected();
                    }
                    if let Some(checkpoint) = checkpoint {
                        $advance(&mut tx, checkpoint, 0, 0).await?;
                    }
                    tx.commit().await.map_err(StoreError::Database)?;
                    Ok(new)
                }

                async fn audit_synced_until(&self, account: ApiAccountId) -> Result<Option<i64>> {
                    sqlx::query_scalar(&sql(
                        DIALECT,
                        "SELECT synced_until FROM mirror_audit_state WHERE account_id = ?",
                    ))
                    .bind(($id)(account.0))
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(StoreError::Database)
                }

                async fn complete_sync_run(
                    &self,
                    run: RunId,
                    account: ApiAccountId,
                    audit_until: Option<i64>,
                    now: i64,
                ) -> Result<()> {
                    let mut tx = self
                        .pool
                        .begin_with($begin)
                        .await
                        .map_err(StoreError::Database)?;
                    if let Some(until) = audit_until {
                        sqlx::query(&sql(DIALECT, SET_AUDIT_STATE))
                            .bind(($id)(account.0))
                            .bind(until)
                            .execute(&mut *tx)
                            .await
                            .map_err(StoreError::Database)?;
                    }
                    sqlx::query(&sql(DIALECT, "DELETE FROM sync_run_ids WHERE run_id = ?"))
                        .bind(run.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::Database)?;
                    let done = sqlx::query(&sql(DIALECT, COMPLETE_RUN))
                        .bind(now)
                        .bind(now)
                        .bind(run.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::Database)?;
                    still_running(done.rows_affected())?;
                    tx.commit().await.map_err(StoreError::Database)
                }

                async fn objects(
                    &self,
                    org: OrgId,
                    kind: ObjectKind,
                ) -> Result<Vec<ObjectSummary>> {
                    let rows: Vec<SummaryRow> = sqlx::query_as(&sql(DIALECT, OBJECTS))
                        .bind(($id)(org.0))
                        .bind(kind.as_str())
                        .fetch_all(&self.pool)
                        .await
                        .map_err(StoreError::Database)?;
                    rows.into_iter().map(ObjectSummary::try_from).collect()
                }

                async fn members(
                    &self,
                    org: OrgId,
                    owner_kind: ObjectKind,
                    owner_id: &str,
                    rel: &str,
                ) -> Result<Vec<String>> {
                    sqlx::query_scalar(&sql(DIALECT, MEMBERS))
                        .bind(($id)(org.0))
                        .bind(owner_kind.as_str())
                        .bind(owner_id)
                        .bind(rel)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(StoreError::Database)
                }

                async fn owners_of(
                    &self,
                    org: OrgId,
                    owner_kind: ObjectKind,
                    rel: &str,
                    member_id: &str,
                ) -> Result<Vec<ObjectSummary>> {
                    let rows: Vec<SummaryRow> = sqlx::query_as(&sql(DIALECT, OWNERS_OF))
                        .bind(($id)(org.0))
                        .bind(rel)
                        .bind(member_id)
                        .bind(owner_kind.as_str())
                        .fetch_all(&self.pool)
                        .await
                        .map_err(StoreError::Database)?;
                    rows.into_iter().map(ObjectSummary::try_from).collect()
                }

                async fn device_audit_events(
                    &self,
                    org: OrgId,
                    serial: &str,
                    limit: u32,
                ) -> Result<Vec<AuditEventRecord>> {
                    let rows: Vec<AuditRow> = sqlx::query_as(&sql(DIALECT, DEVICE_EVENTS))
                        .bind(($id)(org.0))
                        .bind(serial)
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(StoreError::Database)?;
                    Ok(rows.into_iter().map(AuditEventRecord::from).collect())
                }

                async fn object_counts(
                    &self,
                    org: OrgId,
                    account: ApiAccountId,
                ) -> Result<Vec<KindCount>> {
                    let rows: Vec<(String, i64)> = sqlx::query_as(&sql(DIALECT, KIND_COUNTS))
                        .bind(($id)(org.0))
                        .bind(($id)(account.0))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(StoreError::Database)?;
                    Ok(kind_counts(rows))
                }
            }
        }
    };
}

directory_store!(
    sqlite_impl,
    SqliteStore,
    sqlx::Sqlite,
    Dialect::Sqlite,
    "BEGIN IMMEDIATE",
    crate::store::sqlite_mirror::advance,
    |u: Uuid| u.to_string()
);
directory_store!(
    postgres_impl,
    PostgresStore,
    sqlx::Postgres,
    Dialect::Postgres,
    "BEGIN",
    crate::store::postgres_mirror::advance,
    |u: Uuid| u
);
