//! The sync engine (issue 5, "Sync engine"): being written in its own change.
