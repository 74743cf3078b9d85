//! The sidecar host: verifies orchestrator plugin directories, loads each one
//! in its own worker process through the stable ABI, and reports what it
//! declares. `main.rs` only parses arguments and maps results to exit codes.

pub mod cli;
pub mod commands;
pub mod compare;
pub mod compat;
pub mod dry_run;
pub mod elf;
pub mod exit;
pub mod integrity;
pub mod load;
pub mod pg;
pub mod plugin;
pub mod policy;
pub mod run;
pub mod source;
pub mod sys;
pub mod time;
pub mod worker;
