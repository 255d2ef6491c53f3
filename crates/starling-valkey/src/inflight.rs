//! The batches this backend is applying part by part (across slots, or a
//! fan-out batch's entries before its job), so that `settle` can wait for
//! every one that was under way when it was called: what `check` needs to
//! tell a batch in flight from damage.

use std::collections::BTreeSet;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

#[derive(Default)]
pub(crate) struct InFlight {
    state: Mutex<State>,
    changed: Condvar,
    /// Test hook: while set, a batch across slots stops after its first
    /// slot's part until the gate opens.
    gate: Mutex<Option<Arc<Gate>>>,
}

#[derive(Default)]
struct State {
    next: u64,
    running: BTreeSet<u64>,
}

/// A batch under way; dropping it (whatever the outcome) ends it.
pub(crate) struct Running<'a> {
    owner: &'a InFlight,
    id: u64,
}

/// Test hook: holds batches across slots between their parts.
#[derive(Default)]
pub struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
    /// How many batches are waiting at the gate.
    waiting: Mutex<u64>,
    arrived: Condvar,
}

impl Gate {
    /// Lets every held batch (and every later one) go on.
    pub fn open(&self) {
        *self.open.lock() = true;
        self.opened.notify_all();
    }

    /// Waits until `n` batches are held at the gate.
    pub fn wait_for_held(&self, n: u64) {
        let mut waiting = self.waiting.lock();
        while *waiting < n {
            self.arrived.wait(&mut waiting);
        }
    }

    fn pass(&self) {
        *self.waiting.lock() += 1;
        self.arrived.notify_all();
        let mut open = self.open.lock();
        while !*open {
            self.opened.wait(&mut open);
        }
    }
}

impl InFlight {
    pub(crate) fn start(&self) -> Running<'_> {
        let mut state = self.state.lock();
        let id = state.next;
        state.next += 1;
        state.running.insert(id);
        Running { owner: self, id }
    }

    /// Waits until every batch started before this call has ended.
    pub(crate) fn settle(&self) {
        let mut state = self.state.lock();
        let started = state.next;
        while state.running.first().is_some_and(|&id| id < started) {
            self.changed.wait(&mut state);
        }
    }

    /// Between the parts of a batch across slots: waits at the test gate,
    /// if one is set.
    pub(crate) fn between_parts(&self) {
        let gate = self.gate.lock().clone();
        if let Some(gate) = gate {
            gate.pass();
        }
    }

    pub(crate) fn hold(&self) -> Arc<Gate> {
        let gate = Arc::new(Gate::default());
        *self.gate.lock() = Some(Arc::clone(&gate));
        gate
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.owner.state.lock().running.remove(&self.id);
        self.owner.changed.notify_all();
    }
}
