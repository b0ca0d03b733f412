//! A faithful simulator of the Apple Business API.
