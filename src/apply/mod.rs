//! Carrying out a plan: files (the only writer) and reload commands.

pub mod command;
pub mod fs;
