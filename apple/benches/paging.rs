//! Paging benchmark (placeholder).
fn main() {}
