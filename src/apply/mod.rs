//! Carrying out a plan: files (the only writer) and, later, service reloads.

pub mod command;
pub mod fs;
