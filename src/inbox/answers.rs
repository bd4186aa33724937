//! Answers awaited by callback requests. A chat message's HTTP request waits (briefly) for the
//! command's answer so it can return it as a passive reply; whoever handles the message offers the
//! answer here. An answer nobody is waiting for any more goes out through the message API instead —
//! so every message gets exactly one answer.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::oneshot;

/// `None` means "handled, nothing to say".
pub type Answer = Option<String>;

#[derive(Default)]
pub struct AwaitedAnswers {
    waiting: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
}

impl AwaitedAnswers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<Answer>>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts waiting for the answer to the message with `key`; `None` when someone already waits
    /// for it (a concurrent retry of the same message).
    pub fn wait_for(&self, key: &str) -> Option<oneshot::Receiver<Answer>> {
        let mut waiting = self.lock();
        if waiting.get(key).is_some_and(|tx| !tx.is_closed()) {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        waiting.insert(key.to_owned(), tx);
        Some(rx)
    }

    /// Hands the answer to a request still waiting for it; false when none is (the answer must then
    /// be sent another way).
    pub fn offer(&self, key: &str, answer: Answer) -> bool {
        match self.lock().remove(key) {
            Some(tx) => tx.send(answer).is_ok(),
            None => false,
        }
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
        let answers = AwaitedAnswers::default();
        let mut rx = answers.wait_for("msg:1").unwrap();
        assert!(answers.wait_for("msg:1").is_none(), "one waiter per message");
        assert!(answers.offer("msg:1", Some("✅".into())));
        assert_eq!(rx.try_recv().unwrap(), Some("✅".into()));
        assert!(!answers.offer("msg:1", Some("again".into())), "nobody waits any more");
    }

    #[test]
    fn a_request_that_gave_up_refuses_the_answer() {
        let answers = AwaitedAnswers::default();
        let mut rx = answers.wait_for("msg:2").unwrap();
        rx.close();
        assert!(!answers.offer("msg:2", Some("late".into())));
        let rx = answers.wait_for("msg:3").unwrap();
        drop(rx);
        assert!(!answers.offer("msg:3", None));
    }
}
