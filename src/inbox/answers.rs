//! Answers awaited by callback requests. A chat message's HTTP request waits (briefly) for the
//! command's answer so it can return it as a passive reply; whoever handles the message offers the
//! answer here. An answer nobody is waiting for any more goes out through the message API instead —
//! so every message gets exactly one answer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::oneshot;

/// `None` means "handled, nothing to say".
pub type Answer = Option<String>;

pub struct AwaitedAnswers {
    waiting: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
    capacity: usize,
    /// How long the row the worker took up last had waited in the inbox.
    queue_delay_ms: AtomicU64,
    /// Past this queue delay an answer will not come within the reply budget: nobody waits.
    max_queue_delay_ms: u64,
}

impl AwaitedAnswers {
    /// At most `capacity` requests wait at once, and none while the inbox is `reply_budget_ms / 2`
    /// or more behind.
    pub fn new(capacity: usize, reply_budget_ms: u64) -> Self {
        Self {
            waiting: Mutex::default(),
            capacity,
            queue_delay_ms: AtomicU64::new(0),
            max_queue_delay_ms: reply_budget_ms / 2,
        }
    }

    /// Sized by `bot.max_waiting_replies` and `bot.reply_budget_ms`. An instance that does not
    /// process callbacks (`inbox.process = false`) has no answers to hand over: nobody waits.
    pub fn from_config(config: &crate::config::Config) -> Self {
        let capacity = if config.inbox.process {
            config.bot.max_waiting_replies
        } else {
            0
        };
        Self::new(capacity, config.bot.reply_budget_ms)
    }

    /// The worker took up a row that had waited `delay_ms` since it was stored: while rows wait
    /// half the reply budget or more, answers will not come in time and nobody waits for one.
    pub fn observe_taken(&self, delay_ms: u64) {
        self.queue_delay_ms.store(delay_ms, Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<Answer>>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts waiting for the answer to the message with `key`; `None` when someone already waits
    /// for it (a concurrent retry of the same message), when as many requests as allowed wait
    /// already, or when the inbox is too far behind for an answer to come in time (a burst): the
    /// answer then goes through the message API.
    pub fn wait_for(&self, key: &str) -> Option<oneshot::Receiver<Answer>> {
        if self.queue_delay_ms.load(Ordering::Relaxed) >= self.max_queue_delay_ms {
            return None;
        }
        let mut waiting = self.lock();
        if waiting.get(key).is_some_and(|tx| !tx.is_closed()) {
            return None;
        }
        if waiting.len() >= self.capacity {
            waiting.retain(|_, tx| !tx.is_closed());
            if waiting.len() >= self.capacity {
                return None;
            }
        }
        let (tx, rx) = oneshot::channel();
        waiting.insert(key.to_owned(), tx);
        Some(rx)
    }

    /// Hands the answer to a request still waiting for it; false when none is (the answer must then
    /// be sent another way).
    pub fn offer(&self, key: &str, answer: Answer) -> bool {
        self.take_waiter(key).is_some_and(|tx| tx.send(answer).is_ok())
    }

    /// Takes over the request still waiting for the answer to `key`, if one is: the caller hands the
    /// answer over itself once it is committed (a failed send means the request gave up meanwhile).
    pub fn take_waiter(&self, key: &str) -> Option<oneshot::Sender<Answer>> {
        self.lock().remove(key).filter(|tx| !tx.is_closed())
    }

    /// Puts back a waiter taken with [`Self::take_waiter`] whose answer could not be committed: the
    /// request goes on waiting for the next attempt's answer (unless it gave up, or another
    /// request waits for the message meanwhile).
    pub fn wait_again(&self, key: &str, waiter: oneshot::Sender<Answer>) {
        if waiter.is_closed() {
            return;
        }
        self.lock().entry(key.to_owned()).or_insert(waiter);
    }

    /// Stops waiting (the request answered without it).
    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_reaches_a_waiting_request_once() {
        let answers = AwaitedAnswers::new(8, 2000);
        let mut rx = answers.wait_for("msg:1").unwrap();
        assert!(answers.wait_for("msg:1").is_none(), "one waiter per message");
        assert!(answers.offer("msg:1", Some("✅".into())));
        assert_eq!(rx.try_recv().unwrap(), Some("✅".into()));
        assert!(!answers.offer("msg:1", Some("again".into())), "nobody waits any more");
    }

    #[test]
    fn past_capacity_messages_are_not_held() {
        let answers = AwaitedAnswers::new(2, 2000);
        let first = answers.wait_for("msg:1").unwrap();
        let _second = answers.wait_for("msg:2").unwrap();
        assert!(answers.wait_for("msg:3").is_none(), "two wait already");
        drop(first);
        assert!(
            answers.wait_for("msg:3").is_some(),
            "a request that gave up frees its place"
        );
    }

    #[test]
    fn with_no_capacity_nobody_waits() {
        let answers = AwaitedAnswers::new(0, 2000);
        assert!(answers.wait_for("msg:1").is_none());
        assert!(!answers.offer("msg:1", Some("✅".into())));
    }

    #[test]
    fn nobody_waits_while_the_inbox_is_behind() {
        let answers = AwaitedAnswers::new(8, 2000);
        answers.observe_taken(1500);
        assert!(answers.wait_for("msg:1").is_none());
        answers.observe_taken(20);
        assert!(answers.wait_for("msg:1").is_some());
    }

    #[test]
    fn a_waiter_given_back_gets_the_next_answer() {
        let answers = AwaitedAnswers::new(8, 2000);
        let mut rx = answers.wait_for("msg:1").unwrap();
        let taken = answers.take_waiter("msg:1").unwrap();
        assert!(!answers.offer("msg:1", Some("lost".into())), "taken: nobody waits here");
        answers.wait_again("msg:1", taken);
        assert!(answers.offer("msg:1", Some("✅".into())));
        assert_eq!(rx.try_recv().unwrap(), Some("✅".into()));
        let rx = answers.wait_for("msg:2").unwrap();
        let taken = answers.take_waiter("msg:2").unwrap();
        drop(rx);
        answers.wait_again("msg:2", taken);
        assert!(
            answers.wait_for("msg:2").is_some(),
            "a request that gave up is not put back"
        );
    }

    #[test]
    fn a_request_that_gave_up_refuses_the_answer() {
        let answers = AwaitedAnswers::new(8, 2000);
        let mut rx = answers.wait_for("msg:2").unwrap();
        rx.close();
        assert!(!answers.offer("msg:2", Some("late".into())));
        let rx = answers.wait_for("msg:3").unwrap();
        drop(rx);
        assert!(!answers.offer("msg:3", None));
    }
}
