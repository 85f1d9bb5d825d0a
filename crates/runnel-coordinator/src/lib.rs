//! Coordinators as deterministic state machines (see group/mod.rs).

pub mod group;
pub mod records;
pub mod txn;
