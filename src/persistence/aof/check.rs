//! `redsim check-aof [--fix] <file.manifest|file.aof>`: redis-check-aof's report on an AOF,
//! and with `--fix` the truncation of a damaged tail, through the `Disk` door.

use std::fmt::Write as _;

use super::load::{has_rdb_preamble, parse_commands, ParseEnd};
use super::manifest::{FileType, Manifest};
use crate::env::{read_file, Disk, DiskFile};

/// One file's analysis, in redis-check-aof's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    pub size: u64,
    pub ok_up_to: u64,
    /// The line (counted across the files checked so far) where reading stopped.
    pub ok_up_to_line: u64,
    pub format_error: bool,
}

impl Analysis {
    pub fn diff(&self) -> u64 {
        self.size - self.ok_up_to
    }
}

fn newlines(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}

/// Analyses one file of command form; `line` is the line count before it (1 for the first).
pub fn analyse(bytes: &[u8], line: u64) -> Analysis {
    let start = 0;
    let end = parse_commands(bytes, start, &mut |_| {});
    let size = bytes.len() as u64;
    match end {
        ParseEnd::Complete => {
            Analysis { size, ok_up_to: size, ok_up_to_line: line + newlines(bytes), format_error: false }
        }
        ParseEnd::Truncated { valid_up_to } => {
            Analysis { size, ok_up_to: valid_up_to, ok_up_to_line: line + newlines(bytes), format_error: false }
        }
        ParseEnd::Bad { offset } => Analysis {
            size,
            ok_up_to: offset,
            ok_up_to_line: line + newlines(&bytes[..offset as usize]),
            format_error: true,
        },
    }
}

/// Runs the check and returns the exit code; the report goes to `out`. `confirm` asks the
/// user before a fix truncates (redis-check-aof's `Continue? [y/N]:`).
pub async fn run<D: Disk>(
    dir: &D,
    name: &str,
    fix: bool,
    confirm: &mut dyn FnMut(&str) -> bool,
    out: &mut String,
) -> i32 {
    let bytes = match read_file(dir, name).await {
        Ok(b) => b,
        Err(e) => {
            let _ = writeln!(out, "Cannot open file {name}: {e}, aborting...");
            return 1;
        }
    };
    if name.ends_with(".manifest") {
        let _ = writeln!(out, "Start checking Multi Part AOF");
        let m = match Manifest::parse(&bytes) {
            Ok(m) => m,
            Err(e) => {
                let _ = writeln!(out, "{e}");
                return 1;
            }
        };
        let mut line = 1;
        let files: Vec<_> = m.load_order().cloned().collect();
        let mut announced_incr = false;
        for (i, f) in files.iter().enumerate() {
            let last = i + 1 == files.len();
            let data = match read_file(dir, &f.name).await {
                Ok(b) => b,
                Err(e) => {
                    let _ = writeln!(out, "Cannot open file {}: {e}, aborting...", f.name);
                    return 1;
                }
            };
            if f.kind == FileType::Base {
                let what = if has_rdb_preamble(&data) { "RDB" } else { "RESP" };
                let _ = writeln!(out, "Start to check BASE AOF ({what} format).");
                if has_rdb_preamble(&data) {
                    let _ = writeln!(out, "RDB preamble checks are not available in this build; skipping {}", f.name);
                    continue;
                }
            } else if !announced_incr {
                announced_incr = true;
                let _ = writeln!(out, "Start to check INCR files.");
            }
            let prefix = if f.kind == FileType::Base { "BASE AOF" } else { "INCR AOF" };
            if data.is_empty() {
                let _ = writeln!(out, "{prefix} {} is empty", f.name);
                continue;
            }
            let a = analyse(&data, line);
            line = a.ok_up_to_line;
            let code = report(dir, &f.name, &a, fix && last, confirm, out, prefix).await;
            if code != 0 {
                return code;
            }
        }
        let _ = writeln!(out, "All AOF files and manifest are valid");
        return 0;
    }
    let _ = writeln!(out, "Start checking Old-Style AOF");
    let a = analyse(&bytes, 1);
    report(dir, name, &a, fix, confirm, out, "AOF").await
}

async fn report<D: Disk>(
    dir: &D,
    name: &str,
    a: &Analysis,
    fix: bool,
    confirm: &mut dyn FnMut(&str) -> bool,
    out: &mut String,
    valid_prefix: &str,
) -> i32 {
    if a.format_error {
        let _ = writeln!(out, "AOF {name} format error");
    }
    let _ = writeln!(
        out,
        "AOF analyzed: filename={name}, size={}, ok_up_to={}, ok_up_to_line={}, diff={}",
        a.size,
        a.ok_up_to,
        a.ok_up_to_line,
        a.diff()
    );
    if a.diff() == 0 {
        if valid_prefix == "AOF" {
            let _ = writeln!(out, "AOF {name} is valid");
        } else {
            let _ = writeln!(out, "{valid_prefix} {name} is valid");
        }
        return 0;
    }
    if !fix {
        let _ = writeln!(out, "AOF {name} is not valid. Use the --fix option to try fixing it.");
        return 1;
    }
    let _ = writeln!(
        out,
        "This will shrink the AOF {name} from {} bytes, with {} bytes, to {} bytes",
        a.size,
        a.diff(),
        a.ok_up_to
    );
    if !confirm(out) {
        let _ = writeln!(out, "Aborting...");
        return 1;
    }
    let cut = async {
        let f = dir.open(name, false).await?;
        f.set_len(a.ok_up_to).await?;
        f.sync_data().await
    };
    match cut.await {
        Ok(()) => {
            let _ = writeln!(out, "Successfully truncated AOF {name}");
            0
        }
        Err(e) => {
            let _ = writeln!(out, "Failed to truncate AOF {name}: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analysis_matches_redis_check_aof_numbers() {
        // redis-check-aof 7.0.15 on these bytes: size=68, ok_up_to=50, ok_up_to_line=17, diff=18.
        let t = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*3\r\n$3\r\nSET\r\n$1\r\nk";
        let a = analyse(t, 1);
        assert_eq!((a.size, a.ok_up_to, a.ok_up_to_line, a.diff()), (68, 50, 17, 18));
        // And a format error: size=41, ok_up_to=23, ok_up_to_line=6.
        let b = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\nxx\r\n*1\r\n$4\r\nPING\r\n";
        let a = analyse(b, 1);
        assert_eq!((a.size, a.ok_up_to, a.ok_up_to_line, a.format_error), (41, 23, 6, true));
    }
}
