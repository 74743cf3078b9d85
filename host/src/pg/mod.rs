//! PostgreSQL as a read-only source: connection settings and secrets
//! ([`target`]), and the source with its layered read-only policy
//! ([`source`]).

pub mod gate;
pub mod query;
pub mod source;
pub mod target;

pub use source::{DatabaseState, PgSource, PREFLIGHT, SCHEMA};
pub use target::{parse_pg_duration, SessionSettings, Target};
