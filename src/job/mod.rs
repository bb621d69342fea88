//! `lava-docker-run`: render the job, build the container, pull, run, collect, clean up.

pub mod container;
pub mod daemon;
pub mod host_config;
pub mod logs;
pub mod pytime;
pub mod render;
pub mod run;
