//! The IU cutter orchestrator's logic, shared by its plugin versions.
//!
//! The orchestrator cuts each document's latest version into information
//! units (one per section), records them, verifies what it wrote and moves
//! older units out of the active set. The sidecar dry-runs it: nothing here
//! touches a database or a file. A batch of rows comes in, an in-memory
//! [`Simulator`] takes the writes, and every phase returns a [`PhaseResult`]
//! whose plan lists the writes a live run would make.
//!
//! The plugin crates `iu-cutter-v0.6` and `iu-cutter-v0.6-o8a` differ only in
//! the [`Cutter`] they hand to [`Run::new`]; keeping everything else here
//! means a side-by-side evaluation compares cutters, not two copies of the
//! orchestrator that drifted apart. There is no FFI and no I/O in this crate,
//! so all of it is tested as plain Rust.
//!
//! ```
//! use iu_cutter_core::{sha256_hex, NaiveCutter, RecordBatch, Run, SourceDocument,
//!     SourceVersion, Status, PHASES};
//!
//! let body = "intro\n## Setup\nsteps\n## Usage\nrun it\n".to_owned();
//! let batch = RecordBatch {
//!     documents: vec![SourceDocument {
//!         id: 1,
//!         kb_path: "ops/tool.md".into(),
//!         title: "Tool".into(),
//!         status: "active".into(),
//!         updated_at: "2024-01-01T00:00:00Z".into(),
//!     }],
//!     versions: vec![SourceVersion {
//!         id: 10,
//!         document_id: 1,
//!         revision: 1,
//!         body_sha256: sha256_hex(body.as_bytes()),
//!         body,
//!         created_at: "2024-01-01T00:00:00Z".into(),
//!     }],
//!     units: vec![],
//! };
//! let mut run = Run::new(NaiveCutter);
//! for phase in PHASES {
//!     let result = run.run_phase(phase, &batch).expect("phases run in order");
//!     assert_eq!(result.status, Status::Ok);
//! }
//! // The preamble, "Setup" and "Usage".
//! assert_eq!(run.simulator().units().len(), 3);
//! ```

#![deny(missing_docs)]

pub mod cut;
mod domain;
mod phases;
mod report;
#[cfg(feature = "sidecar")]
pub mod sidecar;
mod simulator;

pub use cut::{Cutter, MarkdownCutter, NaiveCutter, Piece};
pub use domain::{
    sha256_hex, InformationUnit, RecordBatch, SourceDocument, SourceVersion, LIFECYCLE_ACTIVE,
    LIFECYCLE_RETIRED, LIFECYCLE_SUPERSEDED, STATUS_ACTIVE, STATUS_ARCHIVED,
};
pub use phases::{Run, PHASES};
pub use report::{Action, Finding, PhaseResult, PlanOp, Severity, Status};
pub use simulator::Simulator;
