//! `pulse-loadgen`: the load-test harness (issue 4). Until then this binary only says so.

fn main() {
    eprintln!("pulse-loadgen: not built yet (see issue 4)");
    std::process::exit(2);
}
