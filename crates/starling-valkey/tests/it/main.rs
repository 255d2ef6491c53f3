//! The Valkey backend over a real cluster: the seam's conformance suite,
//! the writer lease and its fencing, redo intents, and refusals.

mod cluster;
mod conformance;
mod model;
mod writers;
