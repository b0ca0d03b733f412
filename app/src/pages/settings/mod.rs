//! The Settings area: one module per page.

pub mod audit;
pub mod users;
