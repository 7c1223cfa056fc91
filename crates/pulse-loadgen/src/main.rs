//! pulse-loadgen
fn main() {}
