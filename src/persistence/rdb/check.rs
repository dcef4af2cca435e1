//! `redsim check-rdb <file>`: loads a file with the server's own loader and reports, in
//! redis-check-rdb's words, what it holds or where it is corrupt.

use super::{read, Checksum, LoadOptions, Loaded, RdbError};
use crate::engine::db::Db;

/// Databases the check can place keys in (a file from a server with more is reported).
const CHECK_DATABASES: usize = 256;

/// The report and the process exit status (0 OK, 1 corrupt) for a file named `name` with
/// contents `bytes`, judged at wall clock `now_ms` (for "already expired").
pub fn check(name: &str, bytes: &[u8], now_ms: u64) -> (String, i32) {
    let mut dbs: Vec<Db> = (0..CHECK_DATABASES).map(|i| Db::new(i, 0)).collect();
    let opts = LoadOptions { now_ms, skip_expired: true, verify_checksum: true, ..LoadOptions::default() };
    let mut out = format!("[offset 0] Checking RDB file {name}\n");
    let result =
        read::load(bytes, &mut dbs, &opts, &mut |offset, text| out.push_str(&format!("[offset {offset}] {text}\n")));
    let status = match result {
        Ok(l) => {
            report_ok(&mut out, &l);
            0
        }
        Err(e) => {
            report_error(&mut out, &e);
            1
        }
    };
    (out, status)
}

fn report_ok(out: &mut String, l: &Loaded) {
    use std::fmt::Write;
    let _ = writeln!(out, "[info] RDB version {}", l.rdb_version);
    for (id, keys, expires) in &l.db_keys {
        let _ = writeln!(out, "[info] DB {id}: {keys} keys, {expires} with an expiry");
    }
    let crc_at = l.len;
    match l.checksum {
        Checksum::Ok => {
            let _ = writeln!(out, "[offset {crc_at}] Checksum OK");
        }
        Checksum::Disabled => {
            let _ = writeln!(out, "[offset {crc_at}] RDB file was saved with checksum disabled: no check performed.");
        }
        Checksum::NotVerified | Checksum::Absent => {}
    }
    let _ = writeln!(out, "[offset {}] \\o/ RDB looks OK! \\o/", l.len);
    let expires: u64 = l.db_keys.iter().map(|d| d.2).sum();
    let _ = writeln!(out, "[info] {} keys read", l.keys_loaded + l.keys_expired);
    let _ = writeln!(out, "[info] {} expires", expires + l.keys_expired);
    let _ = writeln!(out, "[info] {} already expired", l.keys_expired);
    if l.empty_keys_skipped > 0 {
        let _ = writeln!(out, "[info] {} empty keys skipped", l.empty_keys_skipped);
    }
}

fn report_error(out: &mut String, e: &RdbError) {
    out.push_str("--- RDB ERROR DETECTED ---\n");
    out.push_str(&format!("[offset {}] {}\n", e.offset, e.msg));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_file_is_reported_with_its_offset() {
        let (text, status) = check("x.rdb", b"REDIS0010\xfa", 0);
        assert_eq!(status, 1);
        assert!(text.contains("--- RDB ERROR DETECTED ---\n[offset 10] Unexpected EOF reading RDB file"), "{text}");
    }

    #[test]
    fn empty_file_with_checksum_off_looks_ok() {
        let (text, status) = check("x.rdb", b"REDIS0010\xff\0\0\0\0\0\0\0\0", 0);
        assert_eq!(status, 0, "{text}");
        assert!(text.contains("checksum disabled"), "{text}");
        assert!(text.contains("[offset 18] \\o/ RDB looks OK! \\o/"), "{text}");
    }
}
