//! One worker process per loaded plugin: the protocol, the worker's side
//! (`server`) and the host's side (`client`).
//!
//! Invariant: two plugin versions never share a process, and a plugin's code
//! only ever runs inside a worker.

pub mod client;
pub mod protocol;
pub mod sandbox;
pub mod server;

pub use client::{
    format_size, parse_worker_memory, BatchRun, Limits, NoQueries, PhaseReply, QueryService,
    Worker, WorkerError, DEFAULT_WORKER_MEMORY,
};
pub use sandbox::Sandbox;
