//! modhost's engine: what turns an allocator's decisions into launches and a cluster's events
//! into allocator calls, over the simulated cluster of `modhost simulate`.
//!
//! It is the part of modhost a host embedding the module system does not need: it depends on
//! the `modhost` library, never the other way, and it alone pulls the charting and the
//! command line's crates.

pub mod sim;
