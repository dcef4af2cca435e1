//! The normal build's `redsim-sim` only says how to get the simulator build.

#![cfg(not(madsim))]

#[test]
fn normal_build_binary_points_to_the_simulator_build_and_exits_2() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_redsim-sim"))
        .args(["run", "scenarios/standalone_chaos.toml", "--seed", "1"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cargo simrun"));
}
