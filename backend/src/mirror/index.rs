//! The in-memory search index of the device mirror, one per organization, so typing a serial
//! answers in well under a millisecond on a million devices where SQL `LIKE '%x%'` scans.
//!
//! # What it holds (about 65 bytes per device)
//! * every serial once (an arena of bytes plus end offsets) and the ordinals sorted by
//!   ASCII-folded serial: exact and prefix words are a binary search;
//! * a posting list per trigram of the folded serials: substring words intersect the lists
//!   of their trigrams, then each candidate is verified on its serial bytes;
//! * per device, the id of its combination of the low-variety text fields (model, product
//!   family and type, part number, color, purchase source id; a fleet has a few thousand
//!   combinations): a word is tried once per combination, not once per device;
//! * whether the device is absent (released), for the default "present devices" view;
//! * a hashed bit set of the trigrams found in any identifier field (order number, IMEI,
//!   MEID, EID, MAC addresses). These fields are unique per device and too large to keep:
//!   a word with a trigram outside the set cannot match them (serial fragments, model
//!   words), anything else is answered by SQL.
//!
//! # How a query runs
//! The most selective word (by index statistics) generates candidates; every word is then
//! checked on each candidate with the rules of [`super::search`]. With the default view
//! (no filters but "absent", serial order) the index alone counts and pages, and only the
//! page's rows are read, by primary key. Otherwise up to [`FETCH_MAX`] candidate rows are
//! read and the reference rules filter, sort and page them. Everything else goes to the
//! store's SQL ([`DeviceSearch::search_devices`]), so results are always the SQL results.
//!
//! # Keeping it fresh: the hook the sync calls
//! The index for an organization is built on its first search ([`DeviceIndex::search`]).
//! After the sync commits device rows (new, changed, or newly marked absent) it must call
//! [`DeviceIndex::apply`] with those rows, after the commit; rows written while an index is
//! being built are queued and applied when it is ready. [`DeviceIndex::forget`] drops an
//! organization (deleted, or a bulk rewrite where a rebuild is cheaper). A serial is never
//! removed from the index: devices are never deleted from the mirror, and a stale extra
//! candidate is harmless because rows are re-checked or read by primary key.
//!
//! # Other instances' syncs
//! Instances share the database, not their indexes, and a sync runs on one of them. So an
//! index remembers how far each API account's latest run had got when it last looked (its
//! id, rows written and released: [`RunMark`]), and a search looks again at most every
//! [`CHECK_EVERY`] (one small query). A run that wrote more than the index knows, and is
//! not running in this process ([`DeviceIndex::run_here`]), is caught up by
//! reading the rows changed since the mark ([`DeviceSearch::for_each_device_changed`], by
//! the writing instance's clock, with a margin). An account the index has no mark for, or
//! more changes than a rebuild would read, drop the index instead. A row seen on a page
//! that no longer matches (say, released by another instance's device refresh, which no
//! run counts) is applied and the page answered by SQL.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use super::DeviceRecord;
use super::search::{
    DeviceCursor, DeviceFilters, DeviceQuery, DeviceSort, SearchPage, contains_folded,
    is_substring_word, page_of, sort_models, words,
};
use super::sync::RunId;
use crate::accounts::ApiAccountId;
use crate::orgs::OrgId;
use crate::store::{DeviceSearch, Result};

/// Largest candidate set whose rows are read to apply filters or another sort in memory.
pub const FETCH_MAX: usize = 2_000;

/// Bytes reserved per serial for a build: Apple's serials have 10 or 12 characters.
const SERIAL_BYTES: usize = 12;

/// Bits of the identifier-trigram set (128 KiB per organization).
const IDENT_BITS: u32 = 20;

/// Rows a catch-up reads at least before it gives up for a rebuild (which reads them all);
/// the limit is otherwise a quarter of the index.
const CATCH_UP_MIN: usize = 100_000;

/// How often a search looks for rows other instances' syncs wrote.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Seconds subtracted from a mark's time when reading the rows changed since: a later page
/// of the same run (same clock) is never earlier than its last progress, but clocks step.
const SAME_RUN_MARGIN: i64 = 2;
/// The same for a run the index has not seen, whose instance's clock may differ.
const NEW_RUN_MARGIN: i64 = 60;

/// How far an API account's latest sync run had got: its id, and the device rows it had
/// written, marked absent and moved from staging (SQLite) by `updated_at` (the writing
/// instance's clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunMark {
    pub account: ApiAccountId,
    pub run: RunId,
    pub written: u64,
    pub released: u64,
    pub merged: u64,
    pub started_at: i64,
    pub updated_at: i64,
}

impl RunMark {
    /// Whether `latest` wrote nothing this mark does not cover.
    fn covers(&self, latest: &Self) -> bool {
        (self.run, self.written, self.released, self.merged)
            == (latest.run, latest.written, latest.released, latest.merged)
    }
}

/// How a search was answered (the bench and tests report it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchPath {
    /// Counted and paged by the index; only the page's rows were read.
    Index,
    /// The index found the candidates; their rows were filtered and sorted in memory.
    IndexRows,
    /// The store's SQL answered.
    Sql,
}

/// The indexes of every organization searched since start.
pub struct DeviceIndex {
    orgs: RwLock<HashMap<OrgId, Arc<Built>>>,
    /// Organizations whose index is being built, with the rows applied meanwhile.
    loading: Mutex<HashMap<OrgId, Loading>>,
    /// Sync runs this process is running: their rows arrive through [`Self::apply`].
    local_runs: Mutex<HashSet<RunId>>,
    check_every: Duration,
}

impl Default for DeviceIndex {
    fn default() -> Self {
        Self::with_check_every(CHECK_EVERY)
    }
}

/// A built index and what it has taken in of the sync runs.
struct Built {
    index: RwLock<OrgIndex>,
    /// Held by the one search that looks at the runs; the others go on meanwhile.
    marks: tokio::sync::Mutex<Marks>,
}

struct Marks {
    checked: Instant,
    by_account: HashMap<ApiAccountId, RunMark>,
}

/// An index being built.
#[derive(Default)]
struct Loading {
    /// Rows applied meanwhile, applied to it when built.
    queued: Vec<DeviceRecord>,
    /// [`DeviceIndex::forget`] was called meanwhile: the build may have read the mirror
    /// before the change that called it, so it is dropped rather than published.
    forgotten: bool,
}

impl DeviceIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// An index that looks for other instances' writes every `check_every` (tests: zero).
    pub fn with_check_every(check_every: Duration) -> Self {
        Self {
            orgs: RwLock::default(),
            loading: Mutex::default(),
            local_runs: Mutex::default(),
            check_every,
        }
    }

    /// The sync engine runs `run` in this process, and applies its rows, until the guard
    /// is dropped (whatever the outcome): anything the run writes later is another
    /// instance's doing.
    pub fn run_here(&self, run: RunId) -> RunHere<'_> {
        self.local().insert(run);
        RunHere { index: self, run }
    }

    /// Marks the counters of the runs going on here as read, before they end: this
    /// process applied their rows as it wrote them, so nothing of theirs is read back.
    pub async fn settle_local_runs(&self, store: &dyn DeviceSearch, org: OrgId) -> Result<()> {
        let built = self.built(org);
        let Some(built) = built else {
            return Ok(());
        };
        let mut marks = built.marks.lock().await;
        for mark in store.latest_sync_runs(org).await? {
            if self.local().contains(&mark.run) {
                marks.by_account.insert(mark.account, mark);
            }
        }
        Ok(())
    }

    /// The built index of `org`, if any.
    fn built(&self, org: OrgId) -> Option<Arc<Built>> {
        self.orgs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&org)
            .cloned()
    }

    fn local(&self) -> std::sync::MutexGuard<'_, HashSet<RunId>> {
        self.local_runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// One page of `query`, exactly as [`DeviceSearch::search_devices`] answers it.
    pub async fn search(
        &self,
        store: &dyn DeviceSearch,
        org: OrgId,
        query: &DeviceQuery,
    ) -> Result<SearchPage> {
        Ok(self.search_with_path(store, org, query).await?.0)
    }

    /// [`Self::search`], also telling which path answered.
    pub async fn search_with_path(
        &self,
        store: &dyn DeviceSearch,
        org: OrgId,
        query: &DeviceQuery,
    ) -> Result<(SearchPage, SearchPath)> {
        let Some(index) = self.ready(store, org).await? else {
            return Ok((store.search_devices(org, query).await?, SearchPath::Sql));
        };
        let plan = index
            .index
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .plan(query);
        match plan {
            Plan::Sql => Ok((store.search_devices(org, query).await?, SearchPath::Sql)),
            Plan::Page { serials, total } => {
                let limit = query.limit.max(1) as usize;
                let wanted = &serials[..serials.len().min(limit)];
                let mut rows = if wanted.is_empty() {
                    Vec::new()
                } else {
                    store.devices_by_serial(org, wanted).await?
                };
                if rows.len() != wanted.len() || !rows.iter().all(|d| query.matches(d)) {
                    // The index knows a serial the mirror does not, or a row changed in a
                    // way it was not told (see the module note): mend it, answer from SQL.
                    self.apply(org, &rows);
                    return Ok((store.search_devices(org, query).await?, SearchPath::Sql));
                }
                rows.sort_by(|a, b| a.serial.as_bytes().cmp(b.serial.as_bytes()));
                let next = (serials.len() > limit).then(|| {
                    rows.last()
                        .map(|d| DeviceCursor::of(query.sort, d).encode())
                        .unwrap_or_default()
                });
                let page = SearchPage {
                    devices: rows,
                    total,
                    next,
                };
                Ok((page, SearchPath::Index))
            }
            Plan::Rows(serials) => {
                let rows = if serials.is_empty() {
                    Vec::new()
                } else {
                    store.devices_by_serial(org, &serials).await?
                };
                let matching = rows.into_iter().filter(|d| query.matches(d)).collect();
                Ok((page_of(query, matching), SearchPath::IndexRows))
            }
        }
    }

    /// Tells the index about device rows the sync has just committed (inserted, changed,
    /// or marked absent). Cheap for a page of 1000 rows; call it after each committed page.
    pub fn apply(&self, org: OrgId, rows: &[DeviceRecord]) {
        let mut loading = self.loading.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(building) = loading.get_mut(&org) {
            building.queued.extend_from_slice(rows);
            return;
        }
        drop(loading);
        let index = self.built(org);
        if let Some(built) = index {
            built
                .index
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .apply(rows);
        }
    }

    /// Drops an organization's index (and any build under way, which may predate the
    /// change); the next search rebuilds it from the database.
    pub fn forget(&self, org: OrgId) {
        let mut loading = self.loading.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(building) = loading.get_mut(&org) {
            building.forgotten = true;
        }
        self.orgs
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&org);
        drop(loading);
    }

    /// Builds the index of `org` now (at start, or after [`Self::forget`]).
    pub async fn load(&self, store: &dyn DeviceSearch, org: OrgId) -> Result<()> {
        self.ready(store, org).await.map(drop)
    }

    /// How many devices of `org` Apple currently returns, if its index is built: the
    /// freshness line's count without an aggregate over the mirror on every keystroke.
    pub fn present_count(&self, org: OrgId) -> Option<u64> {
        let orgs = self.orgs.read().unwrap_or_else(PoisonError::into_inner);
        let index = orgs
            .get(&org)?
            .index
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        Some((index.len() - index.absent_count) as u64)
    }

    /// Bytes held for `org` (the memory bar: ≤ 8 MB per 100k devices), if built.
    pub fn memory_bytes(&self, org: OrgId) -> Option<usize> {
        let orgs = self.orgs.read().unwrap_or_else(PoisonError::into_inner);
        let built = orgs.get(&org)?;
        let bytes = built
            .index
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .memory_bytes();
        Some(bytes)
    }

    /// The distinct models of `org`'s present devices, as
    /// [`DeviceSearch::device_models`] lists them, for the device list's model filter: from
    /// the index (one pass over a few bytes per device, no database read), or from SQL
    /// while another task builds the index.
    pub async fn models(&self, store: &dyn DeviceSearch, org: OrgId) -> Result<Vec<String>> {
        match self.ready(store, org).await? {
            Some(built) => Ok(built
                .index
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .present_models()),
            None => store.device_models(org).await,
        }
    }

    /// The index of `org`, built if missing and caught up with other instances' syncs if
    /// due; `None` while another task builds it.
    async fn ready(&self, store: &dyn DeviceSearch, org: OrgId) -> Result<Option<Arc<Built>>> {
        let built = self.built(org);
        if let Some(built) = built {
            return if self.catch_up(store, org, &built).await? {
                Ok(Some(built))
            } else {
                self.build(store, org).await
            };
        }
        self.build(store, org).await
    }

    /// Looks at the organization's sync runs if the check interval has passed, and reads
    /// what other instances wrote since the last look. `false` when the index was dropped
    /// instead (a rebuild reads less).
    async fn catch_up(&self, store: &dyn DeviceSearch, org: OrgId, built: &Built) -> Result<bool> {
        let Ok(mut marks) = built.marks.try_lock() else {
            return Ok(true); // another search is looking
        };
        if marks.checked.elapsed() < self.check_every {
            return Ok(true);
        }
        let latest = store.latest_sync_runs(org).await?;
        let mut since: Option<i64> = None;
        for run in &latest {
            let from = match marks.by_account.get(&run.account) {
                Some(mark) if mark.covers(run) => continue,
                _ if self.local().contains(&run.run) => continue,
                Some(mark) if mark.run == run.run => mark.updated_at - SAME_RUN_MARGIN,
                Some(mark) => mark.updated_at.min(run.started_at) - NEW_RUN_MARGIN,
                // An account the index has not seen a run of (new since the build).
                None => {
                    self.forget(org);
                    return Ok(false);
                }
            };
            since = Some(since.map_or(from, |s| s.min(from)));
        }
        if let Some(since) = since {
            let len = built
                .index
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .len();
            let most = (len / 4).max(CATCH_UP_MIN);
            let mut rows = Vec::new();
            let mut too_many = false;
            store
                .for_each_device_changed(org, since, &mut |d| {
                    if rows.len() < most {
                        rows.push(d);
                    } else {
                        too_many = true;
                    }
                })
                .await?;
            if too_many {
                self.forget(org);
                return Ok(false);
            }
            self.apply(org, &rows);
        }
        marks.by_account = latest.into_iter().map(|m| (m.account, m)).collect();
        marks.checked = Instant::now();
        Ok(true)
    }

    /// Builds the index of `org`; `None` while another task builds it.
    async fn build(&self, store: &dyn DeviceSearch, org: OrgId) -> Result<Option<Arc<Built>>> {
        {
            let mut loading = self.loading.lock().unwrap_or_else(PoisonError::into_inner);
            if loading.contains_key(&org) {
                return Ok(None);
            }
            loading.insert(org, Loading::default());
        }
        // If this future is dropped mid-build (the request was cancelled), the guard takes
        // the organization out of `loading`, so the next search builds it again instead of
        // falling back to SQL for good.
        let guard = LoadingGuard { index: self, org };
        // The runs first: whatever they write after this is caught up later.
        // (A failure returns through the guard.)
        let marks = store.latest_sync_runs(org).await?;
        let count = store.mirror_summary(org).await?;
        let mut index = OrgIndex::with_capacity((count.devices + count.absent) as usize);
        let built = store
            .for_each_device(org, &mut |d| {
                index.push(&d);
            })
            .await;
        // Laid out before taking `loading`: rows applied meanwhile are still queued.
        let index = built.map(|()| {
            index.finish();
            index
        });
        std::mem::forget(guard);
        let mut loading = self.loading.lock().unwrap_or_else(PoisonError::into_inner);
        let building = loading.remove(&org).unwrap_or_default();
        let mut index = index?;
        if building.forgotten {
            // Searched through SQL this time; the next search builds it again.
            return Ok(None);
        }
        index.apply(&building.queued);
        let built = Arc::new(Built {
            index: RwLock::new(index),
            marks: tokio::sync::Mutex::new(Marks {
                checked: Instant::now(),
                by_account: marks.into_iter().map(|m| (m.account, m)).collect(),
            }),
        });
        // Published while `loading` is held, so no `apply` falls between the two maps.
        self.orgs
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(org, built.clone());
        drop(loading);
        Ok(Some(built))
    }
}

/// A sync run going on in this process ([`DeviceIndex::run_here`]).
pub struct RunHere<'a> {
    index: &'a DeviceIndex,
    run: RunId,
}

impl Drop for RunHere<'_> {
    fn drop(&mut self) {
        self.index.local().remove(&self.run);
    }
}

/// Removes an organization from [`DeviceIndex::loading`] when its build is abandoned.
struct LoadingGuard<'a> {
    index: &'a DeviceIndex,
    org: OrgId,
}

impl Drop for LoadingGuard<'_> {
    fn drop(&mut self) {
        self.index
            .loading
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.org);
    }
}

enum Plan {
    Sql,
    /// The default view: serials of the page (and one more, if there is a next page).
    Page {
        serials: Vec<String>,
        total: u64,
    },
    /// Candidates to read and check.
    Rows(Vec<String>),
}

/// Where the model is among the [`low_variety`] fields.
const MODEL: usize = 0;

/// The low-variety text fields of a device: model, product family, product type, part
/// number, color, purchase source id.
fn low_variety(d: &DeviceRecord) -> [Option<&str>; 6] {
    [
        d.model.as_deref(),
        d.product_family.as_deref(),
        d.product_type.as_deref(),
        d.part_number.as_deref(),
        d.color.as_deref(),
        d.purchase_source_id.as_deref(),
    ]
}

/// The distinct values of one field, each with its folded text.
#[derive(Default)]
struct Dictionary {
    ids: HashMap<Box<str>, u32>,
    folded: Vec<Box<[u8]>>,
}

impl Dictionary {
    fn id(&mut self, value: Option<&str>) -> u32 {
        let Some(value) = value else {
            return u32::MAX;
        };
        if let Some(id) = self.ids.get(value) {
            return *id;
        }
        let id = self.folded.len() as u32;
        self.folded
            .push(value.bytes().map(|b| b.to_ascii_lowercase()).collect());
        self.ids.insert(value.into(), id);
        id
    }

    fn bytes(&self) -> usize {
        self.folded.iter().map(|v| v.len() * 2 + 64).sum()
    }
}

fn identifiers(d: &DeviceRecord) -> [Option<&str>; 7] {
    [
        d.order_number.as_deref(),
        d.imei.as_deref(),
        d.meid.as_deref(),
        d.eid.as_deref(),
        d.wifi_mac.as_deref(),
        d.bluetooth_mac.as_deref(),
        d.ethernet_mac.as_deref(),
    ]
}

fn trigram(b: &[u8]) -> u32 {
    u32::from(b[0].to_ascii_lowercase()) << 16
        | u32::from(b[1].to_ascii_lowercase()) << 8
        | u32::from(b[2].to_ascii_lowercase())
}

fn ident_bit(gram: u32) -> usize {
    (gram.wrapping_mul(0x9E37_79B1) >> (32 - IDENT_BITS)) as usize
}

/// Compares the folded `serial`, cut to the word's length, with a folded word.
fn cmp_prefix(serial: &[u8], word: &[u8]) -> Ordering {
    let n = serial.len().min(word.len());
    serial[..n]
        .iter()
        .map(u8::to_ascii_lowercase)
        .cmp(word[..n].iter().copied())
        .then(serial.len().min(word.len()).cmp(&word.len()))
}

/// How many leading values of the ascending `list` are below `x`: doubling steps to a
/// bound, then a binary search behind it.
fn gallop(list: &[u32], x: u32) -> usize {
    let mut end = 1;
    while end < list.len() && list[end] < x {
        end *= 2;
    }
    // After a step, the value at `end / 2` was checked to be below `x`.
    let start = end / 2;
    start + list[start..(end + 1).min(list.len())].partition_point(|v| *v < x)
}

fn cmp_folded(a: &[u8], b: &[u8]) -> Ordering {
    a.iter()
        .map(u8::to_ascii_lowercase)
        .cmp(b.iter().map(u8::to_ascii_lowercase))
        .then_with(|| a.cmp(b))
}

/// The distinct trigrams of a serial, into `out`.
fn distinct_grams(serial: &[u8], out: &mut Vec<u32>) {
    out.clear();
    out.extend(serial.windows(3).map(trigram));
    out.sort_unstable();
    out.dedup();
}

#[derive(Default)]
struct OrgIndex {
    arena: Vec<u8>,
    ends: Vec<u32>,
    by_serial: Vec<u32>,
    grams: HashMap<u32, Vec<u32>>,
    /// Per device, its combination of [`low_variety`] values.
    combo: Vec<u32>,
    combo_ids: HashMap<[u32; 6], u32>,
    /// Each combination's value ids in the six dictionaries (`u32::MAX`: no value).
    combos: Vec<[u32; 6]>,
    dictionaries: [Dictionary; 6],
    absent: Vec<u64>,
    /// Bits set in `absent`, kept by [`Self::set_absent`]: the freshness line asks on
    /// every keystroke.
    absent_count: usize,
    ident_grams: Vec<u64>,
    /// Whether folded order equals byte order for every serial (no byte in `[`..=`z`),
    /// so a range of `by_serial` is already in result order.
    order_safe: bool,
}

struct Word {
    text: Vec<u8>,
    substring: bool,
    /// Which combinations match (`None`: none do).
    combos: Option<Vec<bool>>,
}

impl OrgIndex {
    /// An empty index for about `devices` devices, its per-device arrays allocated once
    /// rather than grown by doubling through buffers that are then freed.
    fn with_capacity(devices: usize) -> Self {
        let mut index = Self::default();
        index.arena.reserve_exact(devices * SERIAL_BYTES);
        index.ends.reserve_exact(devices);
        index.combo.reserve_exact(devices);
        index.absent.reserve_exact(devices.div_ceil(64));
        index
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn serial(&self, i: u32) -> &[u8] {
        let i = i as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.arena[start..self.ends[i] as usize]
    }

    fn serial_text(&self, i: u32) -> String {
        String::from_utf8_lossy(self.serial(i)).into_owned()
    }

    fn is_absent(&self, i: u32) -> bool {
        self.absent[i as usize / 64] >> (i % 64) & 1 == 1
    }

    fn set_absent(&mut self, i: u32, absent: bool) {
        let (w, b) = (i as usize / 64, i % 64);
        if self.absent.len() <= w {
            self.absent.resize(w + 1, 0);
        }
        let was = self.absent[w] >> b & 1 == 1;
        if absent {
            self.absent[w] |= 1 << b;
        } else {
            self.absent[w] &= !(1 << b);
        }
        match (was, absent) {
            (false, true) => self.absent_count += 1,
            (true, false) => self.absent_count -= 1,
            _ => {}
        }
    }

    fn combo_id(&mut self, d: &DeviceRecord) -> u32 {
        let values = low_variety(d);
        let key: [u32; 6] = std::array::from_fn(|f| self.dictionaries[f].id(values[f]));
        if let Some(id) = self.combo_ids.get(&key) {
            return *id;
        }
        let id = self.combos.len() as u32;
        self.combos.push(key);
        self.combo_ids.insert(key, id);
        id
    }

    /// Which combinations have a field containing `word`; `None` when none do (the usual
    /// case for a serial fragment, decided on the few distinct values alone).
    fn combos_containing(&self, word: &[u8]) -> Option<Vec<bool>> {
        let hits: Vec<Vec<bool>> = self
            .dictionaries
            .iter()
            .map(|d| d.folded.iter().map(|v| contains_folded(v, word)).collect())
            .collect();
        if !hits.iter().flatten().any(|h| *h) {
            return None;
        }
        let matched = self
            .combos
            .iter()
            .map(|key| {
                key.iter()
                    .zip(&hits)
                    .any(|(id, h)| h.get(*id as usize).copied().unwrap_or(false))
            })
            .collect();
        Some(matched)
    }

    fn note_identifiers(&mut self, d: &DeviceRecord) {
        if self.ident_grams.is_empty() {
            self.ident_grams = vec![0; 1 << (IDENT_BITS - 6)];
        }
        for v in identifiers(d).into_iter().flatten() {
            for g in v.as_bytes().windows(3) {
                let bit = ident_bit(trigram(g));
                self.ident_grams[bit / 64] |= 1 << (bit % 64);
            }
        }
    }

    /// Appends a device not yet in a finished index, trigram lists included (the caller
    /// merges it into `by_serial`).
    fn insert(&mut self, d: &DeviceRecord) {
        let i = self.push(d);
        let mut seen = Vec::new();
        distinct_grams(d.serial.as_bytes(), &mut seen);
        for g in seen {
            self.grams.entry(g).or_default().push(i);
        }
    }

    /// Adds a device after the last one, except to the trigram lists; returns its number.
    fn push(&mut self, d: &DeviceRecord) -> u32 {
        let i = self.len() as u32;
        if i == 0 {
            self.order_safe = true;
        }
        let s = d.serial.as_bytes();
        self.order_safe &= !s.iter().any(|b| (b'['..=b'z').contains(b));
        self.arena.extend_from_slice(s);
        self.ends.push(self.arena.len() as u32);
        let c = self.combo_id(d);
        self.combo.push(c);
        self.set_absent(i, d.absent_since.is_some());
        self.note_identifiers(d);
        i
    }

    /// Finishes a fresh build, whose devices were added with [`Self::push`]: lays out the
    /// trigram lists, sorts the serials and trims spare capacity.
    ///
    /// Each trigram list is allocated once at its exact size, from two passes over the
    /// serials already in the arena: one counts each list's length, the other fills them
    /// in device order. Grown a push at a time, the outgrown buffers of thousands of lists
    /// stayed in the process; nothing the size of the mirror is allocated only to be freed,
    /// which the allocator would hold on to.
    fn finish(&mut self) {
        let mut lengths: HashMap<u32, usize> = HashMap::new();
        let mut grams = Vec::new();
        for i in 0..self.len() as u32 {
            distinct_grams(self.serial(i), &mut grams);
            for g in &grams {
                *lengths.entry(*g).or_default() += 1;
            }
        }
        let mut lists: HashMap<u32, Vec<u32>> = lengths
            .into_iter()
            .map(|(g, n)| (g, Vec::with_capacity(n)))
            .collect();
        for i in 0..self.len() as u32 {
            distinct_grams(self.serial(i), &mut grams);
            for g in &grams {
                lists.get_mut(g).expect("counted above").push(i);
            }
        }
        self.grams = lists;
        let mut order: Vec<u32> = (0..self.len() as u32).collect();
        order.sort_unstable_by(|a, b| cmp_folded(self.serial(*a), self.serial(*b)));
        self.by_serial = order;
        self.arena.shrink_to_fit();
        self.ends.shrink_to_fit();
        self.combo.shrink_to_fit();
    }

    fn find(&self, serial: &[u8]) -> Option<u32> {
        self.by_serial
            .binary_search_by(|i| cmp_folded(self.serial(*i), serial))
            .ok()
            .map(|p| self.by_serial[p])
    }

    fn apply(&mut self, rows: &[DeviceRecord]) {
        let mut added = Vec::new();
        for d in rows {
            match self.find(d.serial.as_bytes()) {
                Some(i) => {
                    let c = self.combo_id(d);
                    self.combo[i as usize] = c;
                    self.set_absent(i, d.absent_since.is_some());
                    self.note_identifiers(d);
                }
                None if !added.iter().any(|i| self.serial(*i) == d.serial.as_bytes()) => {
                    self.insert(d);
                    added.push(self.len() as u32 - 1);
                }
                None => {
                    let i = *added
                        .iter()
                        .find(|i| self.serial(**i) == d.serial.as_bytes())
                        .unwrap_or(&0);
                    let c = self.combo_id(d);
                    self.combo[i as usize] = c;
                    self.set_absent(i, d.absent_since.is_some());
                }
            }
        }
        if added.is_empty() {
            return;
        }
        added.sort_unstable_by(|a, b| cmp_folded(self.serial(*a), self.serial(*b)));
        let old = std::mem::take(&mut self.by_serial);
        let mut merged = Vec::with_capacity(old.len() + added.len());
        let (mut a, mut b) = (old.into_iter().peekable(), added.into_iter().peekable());
        while let (Some(x), Some(y)) = (a.peek(), b.peek()) {
            if cmp_folded(self.serial(*x), self.serial(*y)).is_le() {
                merged.extend(a.next());
            } else {
                merged.extend(b.next());
            }
        }
        merged.extend(a);
        merged.extend(b);
        self.by_serial = merged;
    }

    fn memory_bytes(&self) -> usize {
        let postings: usize = self
            .grams
            .values()
            .map(|v| v.capacity() * 4 + 4 + std::mem::size_of::<Vec<u32>>())
            .sum();
        let combos = self.combos.capacity() * 24
            + self.combo_ids.capacity() * 32
            + self
                .dictionaries
                .iter()
                .map(Dictionary::bytes)
                .sum::<usize>();
        self.arena.capacity()
            + self.ends.capacity() * 4
            + self.by_serial.capacity() * 4
            + self.combo.capacity() * 4
            + self.absent.capacity() * 8
            + self.ident_grams.capacity() * 8
            + postings
            + combos
    }

    /// The models of present devices: the combinations still in use, then their models.
    fn present_models(&self) -> Vec<String> {
        let mut in_use = vec![false; self.combos.len()];
        for (i, combo) in self.combo.iter().enumerate() {
            if !self.is_absent(i as u32) {
                in_use[*combo as usize] = true;
            }
        }
        let mut ids: Vec<u32> = self
            .combos
            .iter()
            .zip(in_use)
            .filter(|(_, used)| *used)
            .map(|(key, _)| key[MODEL])
            .filter(|id| *id != u32::MAX)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut models: Vec<String> = self.dictionaries[MODEL]
            .ids
            .iter()
            .filter(|(_, id)| ids.binary_search(id).is_ok())
            .map(|(value, _)| value.to_string())
            .collect();
        sort_models(&mut models);
        models
    }

    /// Whether `word` might occur in an identifier field of some device.
    fn maybe_identifier(&self, word: &[u8]) -> bool {
        !self.ident_grams.is_empty()
            && word.windows(3).all(|g| {
                let bit = ident_bit(trigram(g));
                self.ident_grams[bit / 64] >> (bit % 64) & 1 == 1
            })
    }

    fn matches(&self, i: u32, w: &Word) -> bool {
        let s = self.serial(i);
        cmp_prefix(s, &w.text).is_eq()
            || (w.substring && contains_folded(s, &w.text))
            || w.combos
                .as_ref()
                .is_some_and(|c| c[self.combo[i as usize] as usize])
    }

    /// The ordinals whose serial contains a substring word, ascending.
    fn serial_containing(&self, word: &[u8]) -> Vec<u32> {
        let mut lists: Vec<&Vec<u32>> = Vec::new();
        for g in word.windows(3).map(trigram) {
            match self.grams.get(&g) {
                Some(list) => lists.push(list),
                None => return Vec::new(),
            }
        }
        lists.sort_by_key(|l| l.len());
        let (first, rest) = lists.split_first().expect("a substring word has a trigram");
        // Each other list is walked forward once, galloping from where the last ordinal
        // was found: a step or two when lists are alike in length, a binary search's
        // worth when one is far longer.
        let mut from = vec![0; rest.len()];
        first
            .iter()
            .copied()
            .filter(|i| {
                rest.iter().zip(&mut from).all(|(list, at)| {
                    *at += gallop(&list[*at..], *i);
                    list.get(*at) == Some(i)
                })
            })
            .collect()
    }

    fn prefix_range(&self, word: &[u8]) -> (usize, usize) {
        let lo = self
            .by_serial
            .partition_point(|i| cmp_prefix(self.serial(*i), word).is_lt());
        let hi = self
            .by_serial
            .partition_point(|i| !cmp_prefix(self.serial(*i), word).is_gt());
        (lo, hi)
    }

    fn plan(&self, query: &DeviceQuery) -> Plan {
        let mut ws = Vec::new();
        for text in words(&query.text) {
            let substring = is_substring_word(&text);
            let text = text.into_bytes();
            if substring && self.maybe_identifier(&text) {
                return Plan::Sql;
            }
            let combos = if substring {
                self.combos_containing(&text)
            } else {
                None
            };
            ws.push(Word {
                text,
                substring,
                combos,
            });
        }
        // The most selective word without combination matches generates candidates.
        let mut best: Option<(usize, &Word)> = None;
        for w in ws.iter().filter(|w| w.combos.is_none()) {
            let size = if w.substring {
                w.text
                    .windows(3)
                    .map(|g| self.grams.get(&trigram(g)).map_or(0, Vec::len))
                    .min()
                    .unwrap_or(0)
            } else {
                let (lo, hi) = self.prefix_range(&w.text);
                hi - lo
            };
            if best.is_none_or(|(n, _)| size < n) {
                best = Some((size, w));
            }
        }
        let (candidates, in_serial_order): (Vec<u32>, bool) = match best {
            Some((_, w)) if w.substring => (self.serial_containing(&w.text), false),
            Some((_, w)) => {
                let (lo, hi) = self.prefix_range(&w.text);
                (self.by_serial[lo..hi].to_vec(), true)
            }
            None => (self.by_serial.clone(), true),
        };
        let include_absent = query.filters.include_absent;
        let mut found: Vec<u32> = candidates
            .into_iter()
            .filter(|i| include_absent || !self.is_absent(*i))
            .filter(|i| ws.iter().all(|w| self.matches(*i, w)))
            .collect();
        let default_view = query.filters
            == DeviceFilters {
                include_absent,
                ..DeviceFilters::default()
            }
            && query.sort == DeviceSort::Serial;
        if default_view {
            if !(in_serial_order && self.order_safe) {
                found.sort_unstable_by(|a, b| self.serial(*a).cmp(self.serial(*b)));
            }
            let start = query.after.as_ref().map_or(0, |c| {
                found.partition_point(|i| self.serial(*i) <= c.serial.as_bytes())
            });
            let limit = query.limit.max(1) as usize;
            let serials = found[start..]
                .iter()
                .take(limit + 1)
                .map(|i| self.serial_text(*i))
                .collect();
            return Plan::Page {
                serials,
                total: found.len() as u64,
            };
        }
        if found.len() <= FETCH_MAX {
            Plan::Rows(found.into_iter().map(|i| self.serial_text(i)).collect())
        } else {
            Plan::Sql
        }
    }
}

#[cfg(test)]
mod tests {
    use super::gallop;

    #[test]
    fn gallop_finds_the_partition_point() {
        // Lists of up to 40 values spaced 1 to 3 apart, every value in and around them.
        for len in 0..40_u32 {
            for step in 1..=3 {
                let list: Vec<u32> = (0..len).map(|v| v * step).collect();
                for x in 0..(len * step + 2) {
                    let want = list.partition_point(|v| *v < x);
                    assert_eq!(gallop(&list, x), want, "list {list:?}, x {x}");
                }
            }
        }
    }
}
