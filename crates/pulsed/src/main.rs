//! pulsed
fn main() {}
