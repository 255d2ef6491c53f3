//! The Valkey backend over a real cluster: the seam's conformance suite,
//! the writer lease and its fencing, redo intents, and refusals.

/// First port of this binary's cluster (9 nodes).
const BASE_PORT: u16 = 7400;

mod cluster;
mod conformance;
mod differential;
mod fanout;
mod ids;
mod inflight;
mod model;
mod writers;
