//! The bound of the processor's queue, counted in events rather than submissions: a request of
//! one event and one of a thousand take the room they need, so neither memory nor refusals
//! depend on how clients batch.

use std::sync::{Mutex, MutexGuard};

/// Room for events waiting for the processor.
#[derive(Debug)]
pub(crate) struct Room {
    /// Events in the queue.
    used: Mutex<usize>,
    /// Wakes callers waiting for room ([`Room::freed`]).
    freed: tokio::sync::Notify,
    capacity: usize,
}

impl Room {
    pub(crate) fn new(capacity: usize) -> Self {
        Room {
            used: Mutex::new(0),
            freed: tokio::sync::Notify::new(),
            capacity: capacity.max(1),
        }
    }

    fn used(&self) -> MutexGuard<'_, usize> {
        self.used.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes room for `n` events if there is, at once. An empty queue takes any number: no
    /// submission is too large for ever.
    pub(crate) fn try_take(&self, n: usize) -> bool {
        let mut used = self.used();
        let fits = *used == 0 || used.saturating_add(n) <= self.capacity;
        if fits {
            *used += n;
        }
        fits
    }

    /// Gives back the room of `n` events taken out of the queue, and says how many are left.
    pub(crate) fn give_back(&self, n: usize) -> usize {
        let used = {
            let mut used = self.used();
            *used = used.saturating_sub(n);
            *used
        };
        self.freed.notify_waiters();
        used
    }

    /// Resolves when room is next given back — counted from when it is made, not first polled.
    pub(crate) fn freed(&self) -> tokio::sync::futures::Notified<'_> {
        self.freed.notified()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

    use super::*;

    #[test]
    fn room_is_counted_in_events_and_an_empty_queue_takes_anything() {
        let room = Room::new(10);
        assert!(room.try_take(6));
        assert!(room.try_take(4));
        assert!(!room.try_take(1), "full");
        assert_eq!(room.give_back(10), 0);
        assert!(
            room.try_take(25),
            "larger than the whole room, but the queue is empty"
        );
        assert!(!room.try_take(1));
        assert_eq!(room.give_back(25), 0);
    }
}
