//! lava-docker: a Docker credential helper and a job runner for the lava job scheduler.
//!
//! The binaries in `bin/` are thin: they parse arguments and map the typed errors of these
//! modules to messages and exit codes.

pub mod aws;
pub mod cache;
pub mod cli;
pub mod credentials;
pub mod helper;
pub mod job;
pub mod logging;
pub mod registry;
pub mod settings;
pub mod spec;
pub mod store;
