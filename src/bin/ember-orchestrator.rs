//! `ember-orchestrator [PORT]`: burn-collective's global orchestrator on `PORT` (default 29500)
//! and ember-lm's rendezvous on `PORT + 1`, for a multi-node run whose nodes do not start it
//! themselves (`EMBER_START_ORCHESTRATOR=0` on every node, `MASTER_ADDR`/`MASTER_PORT` pointing
//! here). Runs until interrupted.

fn main() {
    let port = match std::env::args().nth(1).map(|p| p.parse::<u16>()) {
        None => 29500,
        Some(Ok(p)) if p < u16::MAX => p,
        Some(_) => {
            eprintln!(
                "usage: ember-orchestrator [PORT]  (a port below 65535; the rendezvous takes PORT + 1)"
            );
            std::process::exit(2);
        }
    };
    eprintln!(
        "ember-orchestrator: orchestrator on port {port}, rendezvous on port {}",
        port + 1
    );
    if let Err(e) = ember_lm::train::run_orchestrator(port) {
        eprintln!("ember-orchestrator: {e}");
        std::process::exit(1);
    }
}
