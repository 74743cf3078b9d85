//! Plugin directory integrity: manifests, the directory walk, and pins.
//!
//! Invariant: nothing here writes into a plugin directory except [`tree::seal`].

pub mod lock;
pub mod manifest;
pub mod tree;
