//! sessiond binary
fn main() {}
