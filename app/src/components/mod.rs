//! Reusable pieces of the interface.

pub mod fields;
pub mod file_text;
pub mod form;
pub mod layout;
pub mod status;
pub mod theme;
