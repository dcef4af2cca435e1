//! `redsim` — the real server build: `redsim server [redis.conf] [--directive value ...]`.

#[cfg(not(madsim))]
fn main() {
    std::process::exit(real::main());
}

#[cfg(madsim)]
fn main() {
    eprintln!("this is the simulator build; the server binary is built without --cfg madsim (use redsim-sim)");
    std::process::exit(2);
}

#[cfg(not(madsim))]
mod real {
    use redsim::env::real::RealEnv;
    use redsim::server::driver::{run, RunOpts};
    use redsim::server::Config;

    const USAGE: &str = "Usage: redsim server [/path/to/redis.conf] [options] [-]\n       redsim sentinel /path/to/sentinel.conf [options]\n       redsim check-rdb <file>\n       redsim --version\n\n\
Examples:\n       redsim server (run the server with default config)\n       redsim server /etc/redis/6379.conf\n       \
redsim server --port 7777\n       redsim server /etc/myredis.conf --loglevel verbose\n";

    pub fn main() -> i32 {
        let args: Vec<String> = std::env::args().collect();
        match args.get(1).map(String::as_str) {
            Some("--version") | Some("-v") => {
                println!("redsim v={} (Redis 7.0.15 compatible)", env!("CARGO_PKG_VERSION"));
                0
            }
            Some("--help") | Some("-h") | Some("help") => {
                print!("{USAGE}");
                0
            }
            Some("sentinel") => sentinel(&args[0], &args[2..]),
            _ if args.iter().any(|a| a == "--sentinel") => {
                let rest: Vec<String> =
                    args[1..].iter().filter(|a| *a != "server" && *a != "--sentinel").cloned().collect();
                sentinel(&args[0], &rest)
            }
            Some("server") => server(&args[0], &args[2..]),
            Some("check-rdb") => check_rdb(&args[2..]),
            Some("check-aof") => check_aof(&args[2..]),
            None => server(&args[0], &[]),
            Some(a) if a.starts_with("--") || !a.starts_with('-') => server(&args[0], &args[1..]),
            Some(other) => {
                eprintln!("unknown command '{other}'\n\n{USAGE}");
                2
            }
        }
    }

    /// `redsim sentinel <sentinel.conf> [--directive value ...]`, as `redis-sentinel`: the
    /// config file is required, since the sentinel stores its state (epochs, votes) in it.
    fn sentinel(exe: &str, args: &[String]) -> i32 {
        let (file, directives) = match parse_args(args) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("*** FATAL CONFIG FILE ERROR (redsim {}) ***\n{e}", env!("CARGO_PKG_VERSION"));
                return 1;
            }
        };
        let Some(path) = file else {
            eprintln!("Sentinel needs config file on disk to save state.  Exiting...");
            return 1;
        };
        let path = match std::path::absolute(&path) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("Can't resolve config file path '{path}': {e}");
                return 1;
            }
        };
        let mut text = match redsim::env::real::read_config_file(&path.to_string_lossy()) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("Fatal error, can't open config file '{}': {e}", path.display());
                return 1;
            }
        };
        for (name, vals) in &directives {
            text.push_str(&format!("\n{name} {}", vals.join(" ")));
        }
        text.push('\n');
        let dir = path.parent().map(|d| d.to_path_buf()).unwrap_or_else(|| ".".into());
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let logfile = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("logfile "))
            .next_back()
            .map(|l| l.trim().trim_matches('"').to_string())
            .filter(|l| !l.is_empty())
            .map(std::path::PathBuf::from);
        let env = RealEnv::new(&dir, logfile);
        let opts = redsim::sentinel::driver::SentinelOpts {
            executable: exe.to_string(),
            config_name: name,
            config_path: path.to_string_lossy().into_owned(),
            bug: None,
        };
        let rt = redsim::env::real::runtime(1);
        match rt.block_on(redsim::sentinel::driver::run(env, &text, opts)) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("redsim: {e}");
                1
            }
        }
    }

    /// `redsim check-rdb <file>`: redis-check-rdb's report; exit 1 when the file is corrupt.
    fn check_rdb(args: &[String]) -> i32 {
        let [path] = args else {
            eprintln!("Usage: redsim check-rdb <rdb-file-name>");
            return 1;
        };
        let bytes = match redsim::env::real::read_file(path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("Cannot check RDB file '{path}': {e}");
                return 1;
            }
        };
        let now_ms = redsim::env::Clock::unix_ms(&redsim::env::real::TokioClock::new());
        let (report, status) = redsim::persistence::rdb::check::check(path, &bytes, now_ms);
        print!("{report}");
        status
    }

    /// redis-server's argument rules: an optional config file first, then `--name value...`
    /// directives (a directive's values run until the next `--`).
    /// `redsim check-aof [--fix] <file.manifest|file.aof>`, as redis-check-aof.
    fn check_aof(args: &[String]) -> i32 {
        let (fix, path) = match args {
            [f, p] if f == "--fix" => (true, p),
            [p] if !p.starts_with("--") => (false, p),
            _ => {
                println!("Usage: redsim check-aof [--fix] <file.manifest|file.aof>");
                return 1;
            }
        };
        let path = std::path::Path::new(path);
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let disk = redsim::env::real::RealDisk::new(dir);
        let mut out = String::new();
        let confirm = |so_far: &str| {
            use std::io::Write;
            print!("{so_far}Continue? [y/N]: ");
            let _ = std::io::stdout().flush();
            let mut answer = String::new();
            let _ = std::io::stdin().read_line(&mut answer);
            answer.trim_start().starts_with(['y', 'Y'])
        };
        let mut printed = 0;
        let mut confirm_printing = |so_far: &str| {
            let r = confirm(so_far);
            printed = so_far.len();
            r
        };
        let code = redsim::env::real::runtime(1).block_on(redsim::persistence::aof::check::run(
            &disk,
            &name,
            fix,
            &mut confirm_printing,
            &mut out,
        ));
        print!("{}", &out[printed.min(out.len())..]);
        code
    }

    /// A config file (if any) and the `--name value...` directives after it.
    type Args = (Option<String>, Vec<(String, Vec<String>)>);

    fn parse_args(args: &[String]) -> Result<Args, String> {
        let mut rest = args;
        let mut file = None;
        if let Some(first) = rest.first() {
            if !first.starts_with("--") {
                file = Some(first.clone());
                rest = &rest[1..];
            }
        }
        let mut directives: Vec<(String, Vec<String>)> = Vec::new();
        for a in rest {
            if let Some(name) = a.strip_prefix("--") {
                if name.is_empty() {
                    return Err("empty directive name".into());
                }
                directives.push((name.to_string(), Vec::new()));
            } else {
                match directives.last_mut() {
                    Some((_, vals)) => vals.push(a.clone()),
                    None => return Err(format!("unexpected argument '{a}'")),
                }
            }
        }
        Ok((file, directives))
    }

    fn server(exe: &str, args: &[String]) -> i32 {
        let (file, directives) = match parse_args(args) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("*** FATAL CONFIG FILE ERROR (redsim {}) ***\n{e}\n\n{USAGE}", env!("CARGO_PKG_VERSION"));
                return 1;
            }
        };
        let mut config = Config::default();
        config.set_startup("bind", "127.0.0.1 -::1").expect("valid default");
        if let Some(path) = &file {
            let text = match redsim::env::real::read_config_file(path) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("Fatal error, can't open config file '{path}': {e}");
                    return 1;
                }
            };
            if let Err(e) = config.load_text(&text) {
                eprintln!(
                    "\n*** FATAL CONFIG FILE ERROR (redsim {}) ***\nReading the configuration file, at {e}",
                    env!("CARGO_PKG_VERSION")
                );
                return 1;
            }
        }
        for (name, vals) in &directives {
            // An empty `--save ""` arrives as one empty value; a bare `--save` as none.
            let vals = if vals.is_empty() { vec![String::new()] } else { vals.clone() };
            if let Err(e) = config.apply_directive(name, &vals) {
                eprintln!(
                    "\n*** FATAL CONFIG FILE ERROR (redsim {}) ***\n>>> '{name} {}'\n{e}",
                    env!("CARGO_PKG_VERSION"),
                    vals.join(" ")
                );
                return 1;
            }
        }
        if config.get("daemonize") == Some("yes") {
            eprintln!("daemonize yes is not supported: run redsim under a supervisor instead");
            return 1;
        }
        let dir = config.get("dir").unwrap_or("").to_string();
        let dir = if dir.is_empty() { ".".to_string() } else { dir };
        // The config file's path is the one it had before the chdir, made absolute (Redis
        // keeps it so for CONFIG REWRITE and INFO's config_file).
        let file = match file.as_deref().map(std::path::absolute).transpose() {
            Ok(f) => f.map(|p| p.to_string_lossy().into_owned()),
            Err(e) => {
                eprintln!("Can't resolve the config file path: {e}");
                return 1;
            }
        };
        match redsim::env::real::enter_dir(&dir) {
            Ok(cwd) => config.set_startup("dir", &cwd).expect("a directory name is a valid dir"),
            Err(e) => {
                eprintln!("Can't chdir to '{dir}': {e}");
                return 1;
            }
        }
        let logfile = config.get("logfile").filter(|l| !l.is_empty()).map(std::path::PathBuf::from);
        let threads: usize = config.get("io-threads").and_then(|v| v.parse().ok()).unwrap_or(1);
        let pidfile = config.get("pidfile").unwrap_or("").to_string();
        let rt = redsim::env::real::runtime(threads);
        let env = RealEnv::new(".", logfile);
        if !pidfile.is_empty() {
            let _ = redsim::env::real::write_pidfile(&pidfile);
        }
        let opts =
            RunOpts { executable: exe.to_string(), config_file: file.clone().unwrap_or_default(), aof_bug: None };
        let result = rt.block_on(run(env, config, opts));
        if !pidfile.is_empty() {
            let _ = redsim::env::real::remove_file(&pidfile);
        }
        match result {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("redsim: {e}");
                1
            }
        }
    }
}
