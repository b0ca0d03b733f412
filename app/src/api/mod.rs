//! Server functions, grouped by resource. Each is thin: state and (from the sign-in
//! work on) the user's role, one backend call, error mapping.

pub mod preferences;
pub mod system;

pub use preferences::{SetTheme, set_theme};
pub use system::{GetSystemStatus, get_system_status};
