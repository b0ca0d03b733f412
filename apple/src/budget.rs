//! Request budget of one API account: a shared limiter so that Orchard itself never causes a 429.
//!
//! Design: two sliding-window limiters, one for reads (GET) and one for writes
//! (POST/PATCH/DELETE), each granting at most `count` permits in any interval of length `per`
//! (bursts up to `count`; a token bucket would allow twice that in its first period, see
//! `Bucket`). Callers queue by priority:
//! only the oldest waiter of the highest non-empty priority may take a permit, so
//! `Interactive` requests jump ahead of `Background` ones without starving order within a
//! class. A 429 that arrives anyway closes both buckets until its `Retry-After` has passed.
//! A small in-flight cap (default 4) keeps parallel requests of one account below the level
//! at which Apple's edge resets HTTP/2 streams (SPEC §5, §19.14).
//! Time is `tokio::time::Instant`, so tests drive it with `tokio::time::pause`. Apple publishes
//! no numbers (SPEC §5); the defaults are deliberately conservative and configurable.

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// Who is waiting: a person in the UI, or a background sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Priority {
    /// A person is waiting; served first.
    Interactive,
    /// Sync engine, bulk jobs; served when no interactive request waits.
    Background,
}

/// Which bucket a request draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestClass {
    /// GET.
    Read,
    /// POST, PATCH, DELETE.
    Write,
}

impl RequestClass {
    /// The class of an HTTP method.
    pub fn of(method: &reqwest::Method) -> Self {
        if *method == reqwest::Method::GET || *method == reqwest::Method::HEAD {
            Self::Read
        } else {
            Self::Write
        }
    }
}

/// `count` requests per `per`, with bursts up to `count`: never more than `count` in any
/// interval of length `per`. Against a server that counts in fixed windows of the same length,
/// leave a small margin in `per` (the client times a request when it leaves, the server when it
/// arrives).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Permits per period; also the burst size.
    pub count: u32,
    /// The period.
    pub per: Duration,
}

impl Rate {
    /// `count` per minute.
    pub const fn per_minute(count: u32) -> Self {
        Self {
            count,
            per: Duration::from_secs(60),
        }
    }
    /// `count` per hour.
    pub const fn per_hour(count: u32) -> Self {
        Self {
            count,
            per: Duration::from_secs(3600),
        }
    }
}

/// Rates of one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetConfig {
    /// GET rate. Default 20 per minute.
    pub reads: Rate,
    /// Write rate. Default 10 per hour.
    pub writes: Rate,
    /// Requests of this account on the wire at once (both classes). Default 4.
    pub max_in_flight: usize,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self {
            reads: Rate::per_minute(20),
            writes: Rate::per_hour(10),
            max_in_flight: 4,
        }
    }
}

/// A snapshot for metrics and the UI ("waiting for budget").
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BudgetStatus {
    /// Interactive requests waiting for a read permit.
    pub reads_waiting_interactive: usize,
    /// Background requests waiting for a read permit.
    pub reads_waiting_background: usize,
    /// Requests waiting for a write permit (both priorities).
    pub writes_waiting: usize,
    /// Read permits available now.
    pub read_permits: f64,
    /// Write permits available now.
    pub write_permits: f64,
    /// Remaining hold after a 429, if any.
    pub held_for: Option<Duration>,
    /// How long until a write could be granted (the hold, or the oldest write leaving the
    /// window); `None` when one could be granted now. Queued writers are not counted.
    pub next_write_in: Option<Duration>,
}

/// A sliding-window limiter: at most `count` grants in any interval of length `per`.
///
/// A token bucket that starts full and refills `count` per `per` would let `2 * count - 1`
/// requests through in the first `per` (the burst plus the refill), which a fixed-window limiter
/// like Apple's (and the simulator's) answers with 429s. Remembering the grant times of the last
/// window instead keeps bursts of up to `count` and the long-run rate, without ever exceeding
/// `count` in any window. Memory is one `Instant` per request granted in the last `per`.
struct Bucket {
    count: usize,
    per: Duration,
    /// Grant times within the last `per`, oldest first; at most `count`.
    granted: VecDeque<Instant>,
    queues: [VecDeque<u64>; 2],
}

impl Bucket {
    fn new(rate: Rate) -> Self {
        Self {
            count: rate.count.max(1) as usize,
            per: rate.per,
            granted: VecDeque::new(),
            queues: [VecDeque::new(), VecDeque::new()],
        }
    }

    /// Forgets grants that left the window ending at `now`.
    fn expire(&mut self, now: Instant) {
        while self
            .granted
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.per)
        {
            self.granted.pop_front();
        }
    }

    fn available(&self) -> usize {
        self.count.saturating_sub(self.granted.len())
    }

    fn head(&self) -> Option<(usize, u64)> {
        (0..2).find_map(|p| self.queues[p].front().map(|t| (p, *t)))
    }

    /// How long until the oldest grant leaves the window (call after `expire`).
    fn until_one(&self, now: Instant) -> Duration {
        match self.granted.front() {
            Some(t) => (*t + self.per).saturating_duration_since(now) + Duration::from_micros(1),
            None => Duration::ZERO,
        }
    }
}

struct State {
    buckets: [Bucket; 2],
    hold_until: Option<Instant>,
    next_ticket: u64,
}

/// The shared limiter of one API account. Share it (`Arc<Budget>`) between every client of the
/// same account; a separate account gets its own.
pub struct Budget {
    state: Mutex<State>,
    notify: Notify,
    in_flight: Semaphore,
    config: BudgetConfig,
}

/// A slot for one request on the wire; released on drop.
#[derive(Debug)]
pub struct InFlight<'a> {
    _permit: Option<SemaphorePermit<'a>>,
}

impl std::fmt::Debug for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budget")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn class_index(c: RequestClass) -> usize {
    match c {
        RequestClass::Read => 0,
        RequestClass::Write => 1,
    }
}

fn prio_index(p: Priority) -> usize {
    match p {
        Priority::Interactive => 0,
        Priority::Background => 1,
    }
}

impl Budget {
    /// A budget with `config`, full buckets.
    pub fn new(config: BudgetConfig) -> Self {
        Self {
            state: Mutex::new(State {
                buckets: [Bucket::new(config.reads), Bucket::new(config.writes)],
                hold_until: None,
                next_ticket: 0,
            }),
            notify: Notify::new(),
            in_flight: Semaphore::new(config.max_in_flight.max(1)),
            config,
        }
    }

    /// Waits for an in-flight slot (held while one attempt is on the wire).
    pub async fn slot(&self) -> InFlight<'_> {
        // The semaphore is never closed, so an error cannot happen; degrade to no slot.
        InFlight {
            _permit: self.in_flight.acquire().await.ok(),
        }
    }

    /// The configured rates.
    pub fn config(&self) -> BudgetConfig {
        self.config
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the counters inconsistent, so a poisoned
        // lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a permit of `class` at `priority`; returns how long it waited. Cancel-safe:
    /// dropping the future leaves the queue.
    pub async fn acquire(&self, class: RequestClass, priority: Priority) -> Duration {
        let started = Instant::now();
        let (ci, pi) = (class_index(class), prio_index(priority));
        let ticket = {
            let mut st = self.lock();
            let t = st.next_ticket;
            st.next_ticket += 1;
            st.buckets[ci].queues[pi].push_back(t);
            t
        };
        let mut guard = Ticket {
            budget: self,
            ci,
            pi,
            ticket,
            taken: false,
        };
        loop {
            let mut notified = pin!(self.notify.notified());
            notified.as_mut().enable();
            let wait = {
                let mut st = self.lock();
                let now = Instant::now();
                let held = st.hold_until.filter(|h| *h > now);
                let bucket = &mut st.buckets[ci];
                bucket.expire(now);
                if let Some(h) = held {
                    Some(h - now)
                } else if bucket.head() == Some((pi, ticket)) {
                    if bucket.available() > 0 {
                        bucket.granted.push_back(now);
                        bucket.queues[pi].pop_front();
                        guard.taken = true;
                        drop(st);
                        self.notify.notify_waiters();
                        return started.elapsed();
                    }
                    Some(bucket.until_one(now))
                } else {
                    None
                }
            };
            match wait {
                Some(d) => {
                    tokio::select! {
                        () = tokio::time::sleep(d) => {}
                        () = &mut notified => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Closes both buckets for `d` (after a 429). Never shortens an existing hold.
    pub fn hold_off(&self, d: Duration) {
        {
            let mut st = self.lock();
            let until = Instant::now() + d;
            st.hold_until = Some(st.hold_until.map_or(until, |h| h.max(until)));
        }
        self.notify.notify_waiters();
    }

    /// A snapshot of queue lengths, permits and hold.
    pub fn status(&self) -> BudgetStatus {
        let mut st = self.lock();
        let now = Instant::now();
        let held_for = st.hold_until.filter(|h| *h > now).map(|h| h - now);
        for b in &mut st.buckets {
            b.expire(now);
        }
        let [r, w] = &st.buckets;
        let next_write_in = match held_for {
            Some(hold) => Some(hold),
            None if w.available() == 0 => Some(w.until_one(now)),
            None => None,
        };
        BudgetStatus {
            reads_waiting_interactive: r.queues[0].len(),
            reads_waiting_background: r.queues[1].len(),
            writes_waiting: w.queues[0].len() + w.queues[1].len(),
            read_permits: r.available() as f64,
            write_permits: w.available() as f64,
            held_for,
            next_write_in,
        }
    }
}

impl Default for Budget {
    fn default() -> Self {
        Self::new(BudgetConfig::default())
    }
}

struct Ticket<'a> {
    budget: &'a Budget,
    ci: usize,
    pi: usize,
    ticket: u64,
    taken: bool,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.taken {
            {
                let mut st = self.budget.lock();
                st.buckets[self.ci].queues[self.pi].retain(|t| *t != self.ticket);
            }
            self.budget.notify.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn budget(reads: Rate) -> Arc<Budget> {
        Arc::new(Budget::new(BudgetConfig {
            reads,
            ..BudgetConfig::default()
        }))
    }

    #[tokio::test(start_paused = true)]
    async fn bursts_up_to_count_then_never_more_than_count_in_any_period() {
        let b = budget(Rate::per_minute(20));
        let start = Instant::now();
        // Ten at once, then one every 3 s: a paced caller after a burst.
        for _ in 0..10 {
            b.acquire(RequestClass::Read, Priority::Background).await;
        }
        let mut granted = vec![Duration::ZERO; 10];
        tokio::time::sleep(Duration::from_secs(3)).await;
        for _ in 0..40 {
            b.acquire(RequestClass::Read, Priority::Background).await;
            granted.push(start.elapsed());
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        // The old token bucket let 10 + 20 through in the first minute (and 39 after a full
        // burst); a fixed-window server counting 20 per minute answers that with 429s.
        for (i, t) in granted.iter().enumerate() {
            let in_window = granted[i..]
                .iter()
                .take_while(|u| **u < *t + Duration::from_secs(60))
                .count();
            assert!(
                in_window <= 20,
                "{in_window} grants in the minute from {t:?}"
            );
        }
        // The long-run rate is still 20 per minute: 50 grants within three minutes.
        assert!(
            *granted.last().unwrap() < Duration::from_secs(180),
            "{granted:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_burst_waits_a_whole_period_for_the_next_permit() {
        let b = budget(Rate::per_minute(20));
        for _ in 0..20 {
            assert_eq!(
                b.acquire(RequestClass::Read, Priority::Background).await,
                Duration::ZERO
            );
        }
        let waited = b.acquire(RequestClass::Read, Priority::Background).await;
        assert!(
            waited >= Duration::from_secs(60) && waited < Duration::from_millis(60_100),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn reads_and_writes_have_separate_buckets() {
        let b = budget(Rate::per_minute(1));
        b.acquire(RequestClass::Read, Priority::Interactive).await;
        let waited = b.acquire(RequestClass::Write, Priority::Interactive).await;
        assert_eq!(waited, Duration::ZERO);
        let waited = b.acquire(RequestClass::Read, Priority::Interactive).await;
        assert!(waited >= Duration::from_secs(59), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn interactive_jumps_ahead_of_background() {
        let b = budget(Rate {
            count: 1,
            per: Duration::from_secs(1),
        });
        b.acquire(RequestClass::Read, Priority::Background).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..3 {
            let (b, order) = (b.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                b.acquire(RequestClass::Read, Priority::Background).await;
                order.lock().unwrap().push(format!("bg{i}"));
            }));
            tokio::task::yield_now().await;
        }
        let (b2, order2) = (b.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            b2.acquire(RequestClass::Read, Priority::Interactive).await;
            order2.lock().unwrap().push("ui".to_owned());
        }));
        tokio::task::yield_now().await;
        assert_eq!(b.status().reads_waiting_background, 3);
        assert_eq!(b.status().reads_waiting_interactive, 1);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["ui", "bg0", "bg1", "bg2"]);
    }

    #[tokio::test(start_paused = true)]
    async fn status_tells_when_the_next_write_can_go() {
        let b = Budget::new(BudgetConfig {
            writes: Rate::per_hour(2),
            ..BudgetConfig::default()
        });
        assert_eq!(b.status().next_write_in, None);
        b.acquire(RequestClass::Write, Priority::Background).await;
        assert_eq!(b.status().next_write_in, None);
        tokio::time::sleep(Duration::from_secs(600)).await;
        b.acquire(RequestClass::Write, Priority::Background).await;
        let next = b.status().next_write_in.unwrap();
        assert!(
            next > Duration::from_secs(2999) && next <= Duration::from_secs(3001),
            "{next:?}"
        );
        b.hold_off(Duration::from_secs(7200));
        assert!(b.status().next_write_in.unwrap() > Duration::from_secs(7000));
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_holds_every_caller_until_retry_after() {
        let b = budget(Rate::per_minute(1200));
        b.hold_off(Duration::from_secs(30));
        assert!(b.status().held_for.is_some());
        let waited = b.acquire(RequestClass::Read, Priority::Interactive).await;
        assert!(waited >= Duration::from_secs(30), "{waited:?}");
        let waited = b.acquire(RequestClass::Write, Priority::Interactive).await;
        assert_eq!(waited, Duration::ZERO);
        // A shorter hold never shortens a longer one.
        b.hold_off(Duration::from_secs(10));
        b.hold_off(Duration::from_secs(5));
        let waited = b.acquire(RequestClass::Read, Priority::Background).await;
        assert!(waited >= Duration::from_secs(10), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_waiter_leaves_the_queue() {
        let b = budget(Rate {
            count: 1,
            per: Duration::from_secs(10),
        });
        b.acquire(RequestClass::Read, Priority::Interactive).await;
        let waiting = tokio::time::timeout(
            Duration::from_secs(1),
            b.acquire(RequestClass::Read, Priority::Interactive),
        )
        .await;
        assert!(waiting.is_err());
        assert_eq!(b.status().reads_waiting_interactive, 0);
        let waited = b.acquire(RequestClass::Read, Priority::Background).await;
        assert!(
            waited <= Duration::from_secs(9) + Duration::from_millis(10),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn in_flight_slots_are_capped() {
        let b = budget(Rate::per_minute(20));
        let slots: Vec<_> = futures::future::join_all((0..4).map(|_| b.slot())).await;
        assert!(
            tokio::time::timeout(Duration::from_secs(1), b.slot())
                .await
                .is_err()
        );
        drop(slots);
        let _again = b.slot().await;
    }

    #[tokio::test(start_paused = true)]
    async fn fast_rates_for_tests_do_not_wait() {
        let b = budget(Rate::per_minute(1200));
        let start = Instant::now();
        for _ in 0..1200 {
            b.acquire(RequestClass::Read, Priority::Background).await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
