//! One module per Apple resource family. Each exposes request constructors (`list()`,
//! `get(&id)`, `create(..)`, ...) returning request values that are sent with `.send(&client)`
//! (or paged with `.pages(&client)` / `.items(&client)`), and the response models.

pub mod activities;
pub mod apps;
pub mod audit_events;
pub mod blueprints;
pub mod configurations;
pub mod mdm_devices;
pub mod mdm_servers;
pub mod org_devices;
pub mod organizational_units;
pub mod packages;
pub mod user_groups;
pub mod users;
