//! Helpers shared by the CLI's integration tests: run the binary, parse its JSON.
#![allow(dead_code)]

use std::process::{Command, Output};

pub fn tc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tinycats")).args(args).output().expect("run tinycats")
}

pub fn ok_json(args: &[&str]) -> serde_json::Value {
    let o = tc(args);
    assert!(o.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", String::from_utf8_lossy(&o.stdout)))
}
