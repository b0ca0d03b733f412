//! Searching the device mirror (issue 5, "Search"): being written in its own change.
