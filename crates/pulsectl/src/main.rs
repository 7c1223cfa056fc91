//! pulsectl
fn main() {}
