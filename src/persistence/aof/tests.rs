//! The flush state machine against Redis's `flushAppendOnlyFile` rules.

use bytes::Bytes;

use super::*;

fn aof(policy: AppendFsync) -> Aof {
    let mut a = Aof::new(policy);
    a.on = true;
    a
}

fn set(a: &mut Aof, k: &str) {
    a.feed(0, &[Bytes::from_static(b"SET"), Bytes::copy_from_slice(k.as_bytes()), Bytes::from_static(b"v")]);
}

fn ok(n: usize) -> WriteOutcome {
    WriteOutcome { written: n, error: None, truncated: false, fsync: None }
}

fn write(a: &mut Aof, now_ms: u64) -> Vec<u8> {
    match a.plan_flush(now_ms, false) {
        FlushPlan::Write { data, .. } => data,
        other => panic!("expected a write, got {other:?}"),
    }
}

#[test]
fn feed_selects_the_db_once_and_counts_offsets() {
    let mut a = aof(AppendFsync::EverySec);
    set(&mut a, "a");
    set(&mut a, "b");
    let text = String::from_utf8(a.buf.clone()).unwrap();
    assert_eq!(text.matches("SELECT").count(), 1);
    assert_eq!(a.buffered_end, a.buf.len() as u64);
    a.feed(1, &[Bytes::from_static(b"DEL"), Bytes::from_static(b"x")]);
    assert_eq!(String::from_utf8(a.buf.clone()).unwrap().matches("SELECT").count(), 2);
}

#[test]
fn everysec_postpones_under_a_running_fsync_for_less_than_two_seconds_then_writes_and_counts() {
    let mut a = aof(AppendFsync::EverySec);
    set(&mut a, "a");
    let d = write(&mut a, 1000);
    a.write_done(d, ok(a.buffered_end as usize), 1000, 1);
    assert_eq!(a.plan_bg_fsync(2), Some(a.written_end));
    set(&mut a, "b");
    assert_eq!(a.plan_flush(5000, false), FlushPlan::Postponed);
    assert_eq!(a.plan_flush(6999, false), FlushPlan::Postponed);
    assert_eq!(a.delayed_fsync, 0);
    assert!(!a.is_durable_enough(a.buffered_end));
    let d = write(&mut a, 7000);
    assert_eq!(a.delayed_fsync, 1);
    assert_eq!(a.flush_postponed_start_ms, 0);
    let n = d.len();
    a.write_done(d, ok(n), 7000, 7);
    assert!(a.is_durable_enough(a.buffered_end));
    a.bg_fsync_done(a.written_end - n as u64, Ok(()));
    assert!(!a.fsync_in_progress);
    assert!(a.fsynced_end < a.written_end);
    assert_eq!(a.plan_bg_fsync(8), Some(a.written_end));
}

#[test]
fn always_waits_for_fsync_and_fsyncs_in_the_write() {
    let mut a = aof(AppendFsync::Always);
    set(&mut a, "a");
    let FlushPlan::Write { data, fsync: true, .. } = a.plan_flush(0, false) else { panic!("always fsyncs") };
    let n = data.len();
    a.write_done(data, WriteOutcome { fsync: None, ..ok(n) }, 0, 0);
    assert!(!a.is_durable_enough(a.buffered_end), "written but not fsynced");
    set(&mut a, "b");
    let d = write(&mut a, 0);
    let n = d.len();
    a.write_done(d, WriteOutcome { fsync: Some(Ok(())), ..ok(n) }, 0, 0);
    assert!(a.is_durable_enough(a.buffered_end));
}

#[test]
fn short_write_is_truncated_away_and_the_whole_buffer_kept_for_the_retry() {
    let mut a = aof(AppendFsync::EverySec);
    set(&mut a, "a");
    let d = write(&mut a, 0);
    let whole = d.clone();
    a.write_done(d, WriteOutcome { written: 5, error: Some(28), truncated: true, fsync: None }, 0, 0);
    assert_eq!(a.buf, whole, "the truncated bytes are written again later");
    assert_eq!(a.incr_size, 0);
    assert_eq!(a.written_end, 0);
    assert!(a.log.iter().any(|l| l.starts_with("Short write while writing to the AOF file: (nwritten=5")));
    assert_eq!(a.last_write_errno, ENOSPC);
}

#[test]
fn short_write_that_cannot_be_truncated_keeps_only_the_unwritten_rest() {
    let mut a = aof(AppendFsync::No);
    set(&mut a, "a");
    let d = write(&mut a, 0);
    let rest = d[5..].to_vec();
    a.write_done(d, WriteOutcome { written: 5, error: Some(28), truncated: false, fsync: None }, 0, 0);
    assert_eq!(a.buf, rest);
    assert_eq!(a.incr_size, 5);
    assert!(a.log.iter().any(|l| l.starts_with("Could not remove short write")));
}

#[test]
fn write_error_refuses_writes_with_misconf_until_a_write_succeeds() {
    let mut a = aof(AppendFsync::EverySec);
    set(&mut a, "a");
    let d = write(&mut a, 0);
    a.write_done(d, WriteOutcome { written: 0, error: Some(5), truncated: false, fsync: None }, 0, 0);
    assert_eq!(a.deny_write_error().as_deref(), Some("MISCONF Errors writing to the AOF file: Input/output error"));
    assert!(a.fatal.is_none());
    // Errors are logged at most once per 30 s.
    set(&mut a, "b");
    let d = write(&mut a, 1000);
    a.write_done(d, WriteOutcome { written: 0, error: Some(5), truncated: false, fsync: None }, 1000, 1);
    assert_eq!(a.log.iter().filter(|l| l.starts_with("Error writing")).count(), 1);
    let d = write(&mut a, 2000);
    let n = d.len();
    a.write_done(d, ok(n), 2000, 2);
    assert_eq!(a.deny_write_error(), None);
    assert!(a.log.iter().any(|l| l == "AOF write error looks solved, Redis can write again."));
    assert_eq!(a.written_end, a.buffered_end);
}

#[test]
fn background_fsync_error_refuses_writes_until_an_fsync_succeeds() {
    let mut a = aof(AppendFsync::EverySec);
    set(&mut a, "a");
    let d = write(&mut a, 0);
    let n = d.len();
    a.write_done(d, ok(n), 0, 0);
    let end = a.plan_bg_fsync(1).unwrap();
    a.bg_fsync_done(end, Err(5));
    assert!(a.deny_write_error().is_some());
    assert_eq!(a.fsynced_end, 0);
    set(&mut a, "b");
    let d = write(&mut a, 0);
    let n = d.len();
    a.write_done(d, ok(n), 0, 0);
    let end = a.plan_bg_fsync(2).unwrap();
    a.bg_fsync_done(end, Ok(()));
    assert_eq!(a.deny_write_error(), None);
}

#[test]
fn always_with_a_write_error_or_an_fsync_error_is_fatal() {
    let mut a = aof(AppendFsync::Always);
    set(&mut a, "a");
    let d = write(&mut a, 0);
    a.write_done(d, WriteOutcome { written: 0, error: Some(5), truncated: false, fsync: None }, 0, 0);
    assert!(a.fatal.as_deref().unwrap().starts_with("Can't recover from AOF write error"));
    let mut a = aof(AppendFsync::Always);
    set(&mut a, "a");
    let d = write(&mut a, 0);
    let n = d.len();
    a.write_done(d, WriteOutcome { fsync: Some(Err(5)), ..ok(n) }, 0, 0);
    assert!(a.fatal.as_deref().unwrap().starts_with("Can't persist AOF for fsync error"));
    assert!(!a.is_durable_enough(a.buffered_end));
}

#[test]
fn planted_ignore_fsync_error_acknowledges_what_was_not_synced() {
    let mut a = aof(AppendFsync::Always);
    a.planted = Some(PlantedBug::IgnoreFsyncError);
    set(&mut a, "a");
    let d = write(&mut a, 0);
    let n = d.len();
    a.write_done(d, WriteOutcome { fsync: Some(Err(5)), ..ok(n) }, 0, 0);
    assert!(a.fatal.is_none());
    assert!(a.is_durable_enough(a.buffered_end));
}
