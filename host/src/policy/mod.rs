//! The host's policies. A plugin is never trusted to enforce them itself.

pub mod kill_switch;
