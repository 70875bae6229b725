//! The test lab's kamailio registrar for scripts (`scripts/bench-desktop.sh 5 configured`):
//! prints its address (`127.0.0.1:PORT`; user 1002, password `secret`) and runs until its
//! standard input closes.
#![allow(missing_docs)]

use std::io::Read;

fn main() {
    let registrar = callbox_sip::lab::Registrar::start();
    println!("{}", registrar.address());
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}
