//! Models: connection specs (and, for the shim, job requests).

pub mod connection;
pub mod duration;
pub mod image;
pub mod job;
