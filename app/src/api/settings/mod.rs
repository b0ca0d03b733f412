//! Server functions of the Settings area.

pub mod audit;
pub mod users;
