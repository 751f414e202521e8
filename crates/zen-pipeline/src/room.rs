//! The bound of the processor's queue, counted in events rather than submissions: a request of
//! one event and one of a thousand take the room they need, so neither memory nor refusals
//! depend on how clients batch.

use std::sync::{Condvar, Mutex, MutexGuard};

/// Room for events waiting for the processor.
#[derive(Debug)]
pub(crate) struct Room {
    state: Mutex<State>,
    freed: Condvar,
    /// Wakes async callers waiting for room ([`Room::freed`]).
    freed_async: tokio::sync::Notify,
    capacity: usize,
}

#[derive(Debug, Default)]
struct State {
    /// Events in the queue.
    used: usize,
    /// Threads waiting in [`Room::take`]: without any, giving back wakes nobody (a wake-up is a
    /// system call, once per request otherwise).
    waiting: usize,
}

impl Room {
    pub(crate) fn new(capacity: usize) -> Self {
        Room {
            state: Mutex::new(State::default()),
            freed: Condvar::new(),
            freed_async: tokio::sync::Notify::new(),
            capacity: capacity.max(1),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fits(&self, used: usize, n: usize) -> bool {
        // An empty queue takes any number: no submission is too large for ever.
        used == 0 || used.saturating_add(n) <= self.capacity
    }

    /// Takes room for `n` events if there is, at once.
    pub(crate) fn try_take(&self, n: usize) -> bool {
        let mut state = self.state();
        let fits = self.fits(state.used, n);
        if fits {
            state.used += n;
        }
        fits
    }

    /// Waits until there is room for `n` events, and takes it (for threads that may block).
    pub(crate) fn take(&self, n: usize) {
        let mut state = self.state();
        while !self.fits(state.used, n) {
            state.waiting += 1;
            state = self.freed.wait(state).unwrap_or_else(|p| p.into_inner());
            state.waiting -= 1;
        }
        state.used += n;
    }

    /// Gives back the room of `n` events taken out of the queue, and says how many are left.
    pub(crate) fn give_back(&self, n: usize) -> usize {
        let used = {
            let mut state = self.state();
            state.used = state.used.saturating_sub(n);
            if state.waiting > 0 {
                self.freed.notify_all();
            }
            state.used
        };
        self.freed_async.notify_waiters();
        used
    }

    /// Resolves when room is next given back — counted from when it is made, not first polled.
    pub(crate) fn freed(&self) -> tokio::sync::futures::Notified<'_> {
        self.freed_async.notified()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // in tests, a panic is the failure report

    use std::sync::Arc;
    use std::time::Duration;

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

    #[test]
    fn a_waiting_taker_goes_on_when_room_is_given_back() {
        let room = Arc::new(Room::new(10));
        assert!(room.try_take(8));
        let waiter = {
            let room = room.clone();
            std::thread::spawn(move || room.take(5))
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !waiter.is_finished(),
            "no room for 5 while 8 of 10 are used"
        );
        assert_eq!(room.give_back(8), 0);
        waiter.join().unwrap();
        assert_eq!(room.give_back(0), 5);
    }
}
