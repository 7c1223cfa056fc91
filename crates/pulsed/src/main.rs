//! `pulsed`: the Pulse server (`standalone | node | coordinator`).
//!
//! The server arrives with issue 3; until then this binary only says so, with a non-zero exit so
//! that no script mistakes it for a running server.

fn main() {
    eprintln!(
        "pulsed: the server is not built yet (see issue 3); use `pulsectl score` to score events offline"
    );
    std::process::exit(2);
}
