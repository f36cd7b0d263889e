//! The `weft` library: a whole node ([`node::Node`]) built from a config, an object
//! store, a clock and a source of randomness, as `weft serve` runs it and as the
//! whole-system simulation (tests/simulation.rs) starts it over injected faults.

pub mod background;
pub mod cluster_sim;
pub mod coord;
pub mod metrics;
pub mod node;
pub mod store;
pub mod token_key;
