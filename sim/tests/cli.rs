//! `redsim-sim` as a user runs it: the normal build only says how to get the simulator build;
//! the simulator build's subcommands keep their exit codes (0 pass, 1 failure, 2 bad input).

use std::process::{Command, Output};

fn redsim_sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_redsim-sim")).args(args).output().expect("runs")
}

#[cfg(not(madsim))]
#[test]
fn normal_build_binary_points_to_the_simulator_build_and_exits_2() {
    let out = redsim_sim(&["run", "scenarios/standalone_chaos.toml", "--seed", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cargo simrun"));
}

#[cfg(madsim)]
mod sim {
    use super::redsim_sim;

    fn stdout(out: &std::process::Output) -> String {
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn list_names_every_scenario_with_its_description() {
        let out = redsim_sim(&["list", "../scenarios"]);
        assert_eq!(out.status.code(), Some(0));
        let text = stdout(&out);
        for name in ["standalone_chaos", "standalone_counters", "standalone_ttl", "toylog_power"] {
            assert!(text.contains(&format!("{name}  (")), "{name} in {text}");
        }
        assert!(text.contains("    The toy append-only log"), "{text}");
    }

    #[test]
    fn shrunk_toylog_seed_7_is_written_and_run_fails_it_with_exit_1() {
        let dir = std::env::temp_dir().join("redsim-sim-cli-shrink-test");
        let _ = std::fs::remove_dir_all(&dir);
        let dir_text = dir.display().to_string();
        let out = redsim_sim(&[
            "shrink",
            "../scenarios/toylog_power.toml",
            "--seed",
            "7",
            "--bug",
            "skip-fsync",
            "--out-dir",
            &dir_text,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let path = stdout(&out).lines().last().expect("the path is printed last").to_string();
        assert!(path.ends_with("toylog_power-seed7.toml"), "{path}");
        let reports = dir.join("reports").display().to_string();
        let run = redsim_sim(&["run", &path, "--seed", "7", "--bug", "skip-fsync", "--reports-dir", &reports]);
        assert_eq!(run.status.code(), Some(1), "{}", stdout(&run));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn shrinking_a_passing_seed_is_bad_input() {
        let out = redsim_sim(&["shrink", "../scenarios/toylog_power.toml", "--seed", "7", "--max-runs", "3"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to shrink"));
    }
}
