//! `redsim-sim` as a user runs it: the normal build only says how to get the simulator build;
//! the simulator build's subcommands keep their exit codes (0 pass, 1 failure, 2 bad input).
//! The tests are the harness, outside the env door: they read what the binary wrote.

#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

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

    #[test]
    fn sweep_reports_failing_seeds_and_the_first_passing_ones_with_an_index() {
        let dir = std::env::temp_dir().join("redsim-sim-cli-sweep-test");
        let _ = std::fs::remove_dir_all(&dir);
        let dir_text = dir.display().to_string();
        let out = redsim_sim(&[
            "sweep",
            "../scenarios/toylog_power.toml",
            "--seeds",
            "0..10",
            "--jobs",
            "2",
            "--bug",
            "skip-fsync",
            "--reports-dir",
            &dir_text,
        ]);
        assert_eq!(out.status.code(), Some(1), "seed 7 fails: {}", stdout(&out));
        assert!(stdout(&out).contains("  seed 7: durability: "), "{}", stdout(&out));
        let scenario_dir = dir.join("toylog_power");
        let mut entries: Vec<String> = std::fs::read_dir(&scenario_dir)
            .expect("reports written")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        entries.sort();
        assert_eq!(entries, ["0", "1", "2", "7", "sweep-0-10"]);
        let index = std::fs::read_to_string(scenario_dir.join("sweep-0-10/index.md")).expect("index.md");
        assert!(index.contains("[seed 7](../7/report.md): durability: "), "{index}");
        assert!(scenario_dir.join("sweep-0-10/index.html").exists());
        assert!(scenario_dir.join("7/report.html").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
