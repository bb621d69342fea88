//! `lava-docker-run`: render the job, build the container, pull, run, collect, clean up.

pub mod host_config;
pub mod pytime;
pub mod render;
pub mod daemon;
pub mod container;
pub mod logs;
pub mod run;
