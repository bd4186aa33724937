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
    fn the_system_clock_reads_the_time() {
        let before = chrono::Utc::now().timestamp_millis();
        let read = Clock::system().now_ms();
        assert!(read >= before && read - before < 60_000);
        assert!(!Clock::system().is_manual());
    }
}
