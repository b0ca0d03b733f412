//! Typed client of the Apple Business API. No Leptos, no database.
