//! The time deliveries run on. Production reads the system clock; the delivery simulation and other
//! tests hold a manual clock and move it themselves, so that leases run out, retries come due and
//! per-member windows slide exactly when a test says — without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Milliseconds since the Unix epoch, from the system or from a hand-moved counter. Cheap to clone;
/// clones of a manual clock share its time.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that stands at `start_ms` until [`Clock::advance`] or [`Clock::set`] moves it.
    pub fn manual(start_ms: i64) -> Self {
        Self {
            manual: Some(Arc::new(AtomicI64::new(start_ms))),
        }
    }

    pub fn now_ms(&self) -> i64 {
        match &self.manual {
            Some(ms) => ms.load(Ordering::SeqCst),
            None => chrono::Utc::now().timestamp_millis(),
        }
    }

    pub fn is_manual(&self) -> bool {
        self.manual.is_some()
    }

    /// Moves a manual clock forward.
    ///
    /// # Panics
    /// On the system clock, which nobody moves.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.manual
            .as_ref()
            .expect("only a manual clock can be moved")
            .fetch_add(ms, Ordering::SeqCst);
    }

    /// Sets a manual clock (never backwards: time that went back would reopen closed windows).
    ///
    /// # Panics
    /// On the system clock.
    pub fn set(&self, ms: i64) {
        self.manual
            .as_ref()
            .expect("only a manual clock can be set")
            .fetch_max(ms, Ordering::SeqCst);
    }
}

/// How long to wait before trying again: `base`, doubling with every attempt, capped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    pub const fn new(base: Duration, cap: Duration) -> Self {
        Self { base, cap }
    }

    /// The wait after attempt `attempt` (1 = the first) before jitter: `base × 2^(attempt−1)`, capped.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exp = attempt.clamp(1, 31) - 1;
        self.base.saturating_mul(1 << exp.min(20)).min(self.cap)
    }

    /// The ceiling spread ±20 %, so that many retries do not come back at the same moment (rows and
    /// messages, retried minutes apart).
    pub fn spread(&self, attempt: u32) -> Duration {
        self.ceiling(attempt).mul_f64(0.8 + rand::random::<f64>() * 0.4)
    }

    /// Anywhere from nothing to the ceiling ("full jitter"), for calls retried within a request.
    pub fn full_jitter(&self, attempt: u32) -> Duration {
        self.ceiling(attempt)
            .mul_f64(rand::random::<f64>())
            .max(Duration::from_millis(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_never_back() {
        let clock = Clock::manual(1_000);
        let shared = clock.clone();
        assert_eq!(clock.now_ms(), 1_000);
        clock.advance(Duration::from_secs(2));
        assert_eq!(shared.now_ms(), 3_000, "clones share the time");
        clock.set(2_000);
        assert_eq!(clock.now_ms(), 3_000, "never backwards");
        clock.set(5_000);
        assert_eq!(clock.now_ms(), 5_000);
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_and_spreads() {
        let b = Backoff::new(Duration::from_secs(2), Duration::from_secs(600));
        assert_eq!(b.ceiling(1), Duration::from_secs(2));
        assert_eq!(b.ceiling(3), Duration::from_secs(8));
        assert_eq!(b.ceiling(40), Duration::from_secs(600));
        let spread = b.spread(1);
        assert!(spread >= Duration::from_millis(1600) && spread <= Duration::from_millis(2400));
        assert!(b.full_jitter(2) <= Duration::from_secs(4));
    }

    #[test]
    fn the_system_clock_reads_the_time() {
        let before = chrono::Utc::now().timestamp_millis();
        let read = Clock::system().now_ms();
        assert!(read >= before && read - before < 60_000);
        assert!(!Clock::system().is_manual());
    }
}
