//! The [`Notifier`]: wakes a wait set's waiter from any thread.

use std::sync::Arc;

use super::sleep::Bell;

/// Wakes the waiter of the [`WaitSet`](super::WaitSet) it came from: its next (or current)
/// wait returns with [`Wakeup::notified`](super::Wakeup::notified). Rings are not counted:
/// several before a wait are one wake-up. Cheap when the waiter is awake (no system call),
/// `Clone`, `Send` and `Sync`; use it to stop a node loop or to hand it work.
#[derive(Clone, Debug)]
pub struct Notifier {
    bell: Arc<Bell>,
}

impl Notifier {
    pub(crate) fn new(bell: Arc<Bell>) -> Notifier {
        Notifier { bell }
    }

    /// Wakes the waiter.
    pub fn notify(&self) {
        self.bell.ring();
    }
}
