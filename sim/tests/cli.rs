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

/// A scratch directory of this process: concurrent test runs (several checkouts on one
/// machine) must not remove each other's reports.
#[cfg(madsim)]
fn scratch(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("{name}-{}", std::process::id()))
}

#[cfg(madsim)]
mod sim {
    use super::{redsim_sim, scratch};
    use std::process::Command;

    fn stdout(out: &std::process::Output) -> String {
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn list_names_every_scenario_with_its_description() {
        let out = redsim_sim(&["list", "../scenarios"]);
        assert_eq!(out.status.code(), Some(0));
        let text = stdout(&out);
        for name in ["standalone_chaos", "standalone_counters", "standalone_ttl", "toylog_power", "toylog_swarm"] {
            assert!(text.contains(&format!("{name}  (")), "{name} in {text}");
        }
        assert!(text.contains("    The toy append-only log"), "{text}");
    }

    /// The planted-bug table as a command: the row of the cluster bug, caught on both its
    /// scenarios within a small budget (the whole table: `cargo simrun-release bugs --jobs 2`).
    #[test]
    fn bugs_prints_the_planted_bug_table_row_by_row() {
        let out =
            redsim_sim(&["bugs", "--dir", "../scenarios", "--only", "cluster-serves", "--budget", "20", "--jobs", "2"]);
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(0), "{text}{}", String::from_utf8_lossy(&out.stderr));
        for scenario in ["cluster_reshard", "cluster_failover"] {
            let row = text.lines().find(|l| l.contains(scenario)).unwrap_or_else(|| panic!("{scenario} in {text}"));
            assert!(row.starts_with("cluster-serves-lost-slot"), "{row}");
        }
        assert!(text.contains("2 bug × scenario pairs, 2 caught within 20 seeds"), "{text}");
    }

    #[test]
    fn every_bug_of_the_catalogue_names_a_scenario_that_exists() {
        use redsim_sim::toylog::Bug;
        for (bug, name) in Bug::CATALOGUE {
            let path = format!("{}/../scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {path}: {e}", bug.name()));
            let s = redsim_sim::scenario::Scenario::from_toml(&text).expect("valid");
            assert_eq!(s.topology.service, bug.service(), "{} on {name}", bug.name());
            assert_eq!(Bug::parse(bug.name()), Some(bug));
        }
        let names: Vec<&str> = Bug::NAMES.split(", ").collect();
        for name in names {
            let bug = Bug::parse(name).expect("every listed name parses");
            assert!(Bug::CATALOGUE.iter().any(|(b, _)| *b == bug), "{name} is in the catalogue");
        }
    }

    #[test]
    fn shrunk_toylog_seed_7_is_written_and_run_fails_it_with_exit_1() {
        let dir = scratch("redsim-sim-cli-shrink-test");
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

    /// The measure: a failing planted-bug run with at least 20 faults shrinks to one
    /// with at most 3.
    #[test]
    fn shrink_takes_a_dense_swarm_run_down_to_at_most_three_faults() {
        let dir = scratch("redsim-sim-cli-shrink-swarm-test");
        let _ = std::fs::remove_dir_all(&dir);
        let dir_text = dir.display().to_string();
        let out = redsim_sim(&[
            "shrink",
            "../scenarios/toylog_swarm.toml",
            "--seed",
            "1",
            "--bug",
            "skip-fsync",
            "--out-dir",
            &dir_text,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let text = stdout(&out);
        let line = text.lines().find(|l| l.contains(" faults -> ")).expect("summary line");
        let mut nums = line.split_whitespace().filter_map(|w| w.trim_end_matches(',').parse::<usize>().ok());
        let (before, after) = (nums.next().expect("before"), nums.next().expect("after"));
        assert!(before >= 20 && after <= 3, "{line}");
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
        let dir = scratch("redsim-sim-cli-sweep-test");
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
        // Every report the sweep wrote replays to the same trace hash (replay exits 0 only then).
        for seed in ["0", "1", "2", "7"] {
            let report = scenario_dir.join(seed).join("report.json").display().to_string();
            let out = redsim_sim(&["replay", &report]);
            let text = stdout(&out);
            assert!(
                text.contains("identical to the report's"),
                "seed {seed}: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(out.status.code(), Some(0), "seed {seed}: {text}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A multi-node sweep's reports replayed together in one process, in another order than the
    /// sweep ran them: node code whose behaviour depended on earlier runs in the process
    /// (tokio's unseeded select! order did, for ~5% of such reports) gives another hash for
    /// some. A sample; `no_select_but_the_biased_one` (src/env) guards the known cause.
    #[test]
    fn a_sentinel_sweeps_reports_replay_identically_in_one_process() {
        let dir = scratch("redsim-sim-cli-replay-many-test");
        let _ = std::fs::remove_dir_all(&dir);
        let dir_text = dir.display().to_string();
        let out = redsim_sim(&[
            "sweep",
            "../scenarios/sentinel_chaos.toml",
            "--seeds",
            "1..9",
            "--jobs",
            "2",
            "--bug",
            "sentinel-votes-twice",
            "--reports-dir",
            &dir_text,
        ]);
        assert_eq!(out.status.code(), Some(1), "some seed of 1..9 catches the double vote: {}", stdout(&out));
        let reports = std::fs::read_dir(dir.join("sentinel_chaos"))
            .expect("reports written")
            .filter(|e| e.as_ref().is_ok_and(|e| e.path().join("report.json").exists()))
            .count();
        assert!(reports >= 4, "3 passing seeds and at least one failing one have reports: {reports}");
        let out = redsim_sim(&["replay", &dir_text, "--jobs", "2"]);
        let text = stdout(&out);
        assert!(text.contains(&format!("{reports} reports: {reports} identical, 0 differ")), "{text}");
        assert_eq!(out.status.code(), Some(0), "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The reports kept for readers in reports/examples/ are true: each replays to its hash.
    #[test]
    fn kept_example_reports_replay_to_their_hash() {
        let out = redsim_sim(&["replay", "../reports/examples", "--jobs", "2"]);
        let text = stdout(&out);
        assert!(
            out.status.code() == Some(0) && text.contains("2 reports: 2 identical"),
            "the example reports are stale: run scripts/refresh-examples and commit them\n{text}"
        );
    }

    /// The newcomer's flow: run → report path printed → report.html rendered by headless Chromium
    /// shows the timeline. Needs Debian's chromium (CI installs it); without it the test says so
    /// and passes only when `REDSIM_REQUIRE_CHROMIUM` is unset.
    #[test]
    fn report_html_renders_a_timeline_in_headless_chromium() {
        let has_chromium = ["chromium", "chromium-browser", "google-chrome"].iter().any(|b| {
            Command::new("sh").args(["-c", &format!("command -v {b}")]).output().is_ok_and(|o| o.status.success())
        });
        if !has_chromium {
            assert!(
                std::env::var_os("REDSIM_REQUIRE_CHROMIUM").is_none(),
                "REDSIM_REQUIRE_CHROMIUM set but no chromium"
            );
            eprintln!("no chromium: screenshot test skipped (apt-get install -y chromium)");
            return;
        }
        let dir = scratch("redsim-sim-cli-screenshot-test");
        let _ = std::fs::remove_dir_all(&dir);
        let dir_text = dir.display().to_string();
        let out = redsim_sim(&["run", "../scenarios/standalone_chaos.toml", "--seed", "1", "--reports-dir", &dir_text]);
        assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
        let html = stdout(&out)
            .lines()
            .find_map(|l| l.strip_prefix("report: "))
            .expect("the report path is printed")
            .replace("report.json", "report.html");
        let png = dir.join("shot.png");
        let shot = Command::new("../scripts/screenshot-report")
            .args([html.as_str(), &png.display().to_string(), "1600x900"])
            .output()
            .expect("runs");
        assert!(shot.status.success(), "{}", String::from_utf8_lossy(&shot.stderr));
        let decoder = png::Decoder::new(std::fs::File::open(&png).expect("png written"));
        let mut reader = decoder.read_info().expect("a PNG");
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).expect("a frame");
        assert_eq!((info.width, info.height), (1600, 900));
        let px = info.color_type.samples();
        let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(px).map(|p| &p[..3]).collect();
        let colours: std::collections::BTreeSet<&[u8]> = pixels.iter().copied().collect();
        let background = pixels[0];
        let drawn = pixels.iter().filter(|p| **p != background).count();
        // A blank or error page has a handful of colours; the timeline (lanes, coloured
        // operations, text) has many, over a good part of the page.
        assert!(colours.len() > 50, "only {} colours: the page did not draw", colours.len());
        assert!(drawn * 20 > pixels.len(), "only {drawn} of {} pixels drawn", pixels.len());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
