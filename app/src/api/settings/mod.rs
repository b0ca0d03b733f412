//! Server functions of the Settings area, one module per resource.

pub mod accounts;
pub mod audit;
pub mod organizations;
pub mod sso;
pub mod users;
