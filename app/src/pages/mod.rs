//! One module per route.

pub mod account;
pub mod areas;
pub mod assign;
pub mod devices;
pub mod error;
pub mod home;
pub mod jobs;
pub mod login;
pub mod not_found;
pub mod settings;
pub mod setup;
pub mod welcome;
