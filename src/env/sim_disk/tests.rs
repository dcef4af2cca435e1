//! One test per fault: each sets the fault up, crashes or fsyncs, and states what survives.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use super::*;
use crate::env::{read_file, write_all_at};

/// SimDisk's futures are ready on first poll, so tests need no runtime.
pub(super) fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a SimDisk future waited"),
    }
}

fn open(disk: &SimDisk, name: &str) -> SimFile {
    block_on(disk.open(name, true)).unwrap()
}

fn write(f: &SimFile, data: &[u8], offset: u64) {
    block_on(write_all_at(f, data, offset)).unwrap();
}

fn sync(f: &SimFile) -> io::Result<()> {
    block_on(f.sync_data())
}

fn sync_dir(disk: &SimDisk) {
    block_on(disk.sync_dir()).unwrap();
}

fn read_all(disk: &SimDisk, name: &str) -> Vec<u8> {
    block_on(read_file(disk, name)).unwrap()
}

/// A disk holding `name` = `data`, synced and dir-synced.
fn disk_with(name: &str, data: &[u8]) -> (SimDisk, SimFile) {
    seeded_disk_with(7, name, data)
}

fn seeded_disk_with(seed: u64, name: &str, data: &[u8]) -> (SimDisk, SimFile) {
    let disk = SimDisk::new(seed);
    let f = open(&disk, name);
    write(&f, data, 0);
    sync(&f).unwrap();
    sync_dir(&disk);
    (disk, f)
}

fn faults(set: impl FnOnce(&mut DiskFaults)) -> DiskFaults {
    let mut faults = DiskFaults::default();
    set(&mut faults);
    faults
}

#[test]
fn reads_see_unsynced_writes() {
    let disk = SimDisk::new(1);
    let f = open(&disk, "appendonly.aof");
    write(&f, b"*1\r\n$4\r\nPING\r\n", 0);
    assert_eq!(read_all(&disk, "appendonly.aof"), b"*1\r\n$4\r\nPING\r\n");
    assert_eq!(disk.durable_contents("appendonly.aof"), None);
}

#[test]
fn synced_write_survives_power_loss() {
    let (disk, _f) = disk_with("dump.rdb", b"REDIS0010");
    disk.power_fail(PowerLoss::LoseAll);
    assert_eq!(read_all(&disk, "dump.rdb"), b"REDIS0010");
}

#[test]
fn unsynced_write_is_lost_on_power_loss_but_synced_prefix_stays() {
    let (disk, f) = disk_with("appendonly.aof", b"synced");
    write(&f, b"-unsynced", 6);
    let report = disk.power_fail(PowerLoss::LoseAll);
    assert_eq!(read_all(&disk, "appendonly.aof"), b"synced");
    assert_eq!(report.files["appendonly.aof"], vec![SectorFate::Lost]);
}

#[test]
fn fsynced_file_without_sync_dir_vanishes_on_power_loss() {
    let disk = SimDisk::new(1);
    let f = open(&disk, "temp-1.rdb");
    write(&f, b"REDIS", 0);
    sync(&f).unwrap();
    disk.power_fail(PowerLoss::LoseAll);
    assert!(block_on(disk.list()).unwrap().is_empty());
}

#[test]
fn rename_without_sync_dir_reverts_on_power_loss() {
    let (disk, _old) = disk_with("dump.rdb", b"old");
    let tmp = open(&disk, "temp-1.rdb");
    write(&tmp, b"new", 0);
    sync(&tmp).unwrap();
    block_on(disk.rename("temp-1.rdb", "dump.rdb")).unwrap();
    assert_eq!(read_all(&disk, "dump.rdb"), b"new");
    disk.power_fail(PowerLoss::LoseAll);
    assert_eq!(read_all(&disk, "dump.rdb"), b"old");
}

#[test]
fn rename_then_sync_dir_survives_power_loss() {
    let (disk, _old) = disk_with("dump.rdb", b"old");
    let tmp = open(&disk, "temp-1.rdb");
    write(&tmp, b"new", 0);
    sync(&tmp).unwrap();
    block_on(disk.rename("temp-1.rdb", "dump.rdb")).unwrap();
    sync_dir(&disk);
    disk.power_fail(PowerLoss::LoseAll);
    assert_eq!(read_all(&disk, "dump.rdb"), b"new");
    assert_eq!(disk.durable_names(), vec!["dump.rdb".to_string()]);
}

#[test]
fn remove_without_sync_dir_comes_back_after_power_loss() {
    let (disk, f) = disk_with("appendonly.aof.1.incr.aof", b"data");
    drop(f);
    block_on(disk.remove("appendonly.aof.1.incr.aof")).unwrap();
    assert!(disk.cached_names().is_empty());
    disk.power_fail(PowerLoss::LoseAll);
    assert_eq!(read_all(&disk, "appendonly.aof.1.incr.aof"), b"data");
}

#[test]
fn removed_file_stays_usable_through_an_open_handle() {
    let disk = SimDisk::new(1);
    let f = open(&disk, "a");
    block_on(disk.remove("a")).unwrap();
    write(&f, b"still here", 0);
    let mut buf = [0u8; 10];
    assert_eq!(block_on(f.read_at(&mut buf, 0)).unwrap(), 10);
    assert_eq!(&buf, b"still here");
}

#[test]
fn failed_fsync_drops_pending_and_a_later_fsync_lies() {
    let (disk, f) = disk_with("appendonly.aof", b"synced|");
    write(&f, b"lost", 7);
    disk.set_faults(faults(|x| x.fsync_eio_probability = 1.0));
    assert_eq!(sync(&f).unwrap_err().raw_os_error(), Some(libc::EIO));
    disk.set_faults(DiskFaults::default());
    sync(&f).unwrap();
    assert_eq!(read_all(&disk, "appendonly.aof"), b"synced|lost");
    assert_eq!(disk.durable_contents("appendonly.aof").unwrap(), b"synced|");
    disk.power_fail(PowerLoss::Prefix { torn_garbage: false });
    assert_eq!(read_all(&disk, "appendonly.aof"), b"synced|");
    assert_eq!(disk.stats().failed_fsyncs, 1);
}

#[test]
fn write_eio_writes_nothing() {
    let (disk, f) = disk_with("appendonly.aof", b"abc");
    disk.set_faults(faults(|x| x.write_eio_probability = 1.0));
    let err = block_on(f.write_at(b"def", 3)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO));
    assert_eq!(disk.cache_contents("appendonly.aof").unwrap(), b"abc");
}

#[test]
fn write_past_capacity_is_cut_then_refused_with_enospc() {
    let disk = SimDisk::new(1);
    disk.set_faults(faults(|x| x.capacity_bytes = Some(10)));
    let f = open(&disk, "appendonly.aof");
    assert_eq!(block_on(f.write_at(b"0123456789abc", 0)).unwrap(), 10);
    let err = block_on(f.write_at(b"x", 10)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::StorageFull);
    assert_eq!(block_on(f.write_at(b"overwrite", 0)).unwrap(), 9);
    assert_eq!(block_on(f.set_len(11)).unwrap_err().raw_os_error(), Some(libc::ENOSPC));
}

#[test]
fn space_returns_when_the_last_handle_of_a_removed_file_closes() {
    let disk = SimDisk::new(1);
    disk.set_faults(faults(|x| x.capacity_bytes = Some(10)));
    let f = open(&disk, "temp.rdb");
    write(&f, b"0123456789", 0);
    block_on(disk.remove("temp.rdb")).unwrap();
    assert_eq!(disk.used_bytes(), 10);
    drop(f);
    assert_eq!(disk.used_bytes(), 0);
}

#[test]
fn short_writes_land_a_nonempty_prefix_and_write_all_completes() {
    let disk = SimDisk::new(3);
    disk.set_faults(faults(|x| x.short_write_probability = 1.0));
    let f = open(&disk, "a");
    let n = block_on(f.write_at(b"hello world", 0)).unwrap();
    assert!((1..11).contains(&n), "wrote {n}");
    assert_eq!(disk.cache_contents("a").unwrap(), &b"hello world"[..n]);
    write(&f, b"hello world", 0);
    assert_eq!(read_all(&disk, "a"), b"hello world");
    assert!(disk.stats().short_writes >= 2);
}

#[test]
fn process_crash_keeps_the_page_cache_but_not_durability() {
    let (disk, f) = disk_with("appendonly.aof", b"synced|");
    write(&f, b"unsynced", 7);
    let tmp = open(&disk, "temp.rdb");
    disk.process_crash();
    assert_eq!(read_all(&disk, "appendonly.aof"), b"synced|unsynced");
    assert_eq!(disk.cached_names(), vec!["appendonly.aof".to_string(), "temp.rdb".to_string()]);
    drop(tmp);
    disk.power_fail(PowerLoss::LoseAll);
    assert_eq!(read_all(&disk, "appendonly.aof"), b"synced|");
}

#[test]
fn handles_from_before_a_crash_are_dead() {
    let (disk, f) = disk_with("a", b"x");
    disk.process_crash();
    assert_eq!(block_on(f.write_at(b"y", 0)).unwrap_err().raw_os_error(), Some(libc::EBADF));
    let g = open(&disk, "a");
    drop(f);
    write(&g, b"z", 0);
    assert_eq!(read_all(&disk, "a"), b"z");
}

#[test]
fn prefix_power_loss_keeps_whole_sectors_in_write_order() {
    for seed in 0..50 {
        let disk = SimDisk::new(seed);
        let f = open(&disk, "a");
        sync_dir(&disk);
        write(&f, &[1u8; 3 * SECTOR_BYTES as usize], 0);
        let report = disk.power_fail(PowerLoss::Prefix { torn_garbage: false });
        let kept = report.files["a"].iter().take_while(|&&x| x == SectorFate::Kept).count();
        assert_eq!(read_all(&disk, "a"), vec![1u8; kept * SECTOR_BYTES as usize]);
    }
}

#[test]
fn any_sector_power_loss_leaves_each_sector_old_or_new() {
    for seed in 0..50 {
        let (disk, f) = seeded_disk_with(seed, "a", &[0xAA; 4 * SECTOR_BYTES as usize]);
        write(&f, &[0xBB; 4 * SECTOR_BYTES as usize], 0);
        let report = disk.power_fail(PowerLoss::AnySector { torn_garbage: false });
        let after = read_all(&disk, "a");
        for (sector, fate) in after.chunks(SECTOR_BYTES as usize).zip(&report.files["a"]) {
            let expected = if *fate == SectorFate::Kept { 0xBB } else { 0xAA };
            assert!(sector.iter().all(|&b| b == expected), "seed {seed}");
        }
    }
}

#[test]
fn torn_sector_holds_garbage_only_where_the_lost_write_aimed() {
    let mut torn = 0;
    for seed in 0..50 {
        let (disk, f) = seeded_disk_with(seed, "a", &[0xAA; 100]);
        write(&f, &[0xBB; 50], 100);
        let report = disk.power_fail(PowerLoss::Prefix { torn_garbage: true });
        let after = read_all(&disk, "a");
        assert_eq!((&after[..100], after.len()), (&[0xAA; 100][..], 150), "seed {seed}");
        match report.files["a"][..] {
            [SectorFate::Kept] => assert_eq!(&after[100..], &[0xBB; 50]),
            [SectorFate::Garbage] => torn += 1,
            ref other => panic!("seed {seed}: the first lost sector must tear, got {other:?}"),
        }
    }
    assert!(torn > 0);
}

#[test]
fn pending_truncation_is_lost_on_power_loss() {
    let (disk, f) = disk_with("appendonly.aof", b"keep|tail");
    block_on(f.set_len(5)).unwrap();
    assert_eq!(read_all(&disk, "appendonly.aof"), b"keep|");
    disk.power_fail(PowerLoss::LoseAll);
    assert_eq!(read_all(&disk, "appendonly.aof"), b"keep|tail");
}

#[test]
fn writeback_makes_pending_writes_and_entries_durable() {
    let disk = SimDisk::new(1);
    let f = open(&disk, "appendonly.aof");
    write(&f, b"no fsync", 0);
    disk.writeback();
    disk.power_fail(PowerLoss::LoseAll);
    assert_eq!(read_all(&disk, "appendonly.aof"), b"no fsync");
}

#[test]
fn read_bitflip_flips_one_bit_of_the_configured_file_only() {
    let (disk, _f) = disk_with("dump.rdb", &[0u8; 64]);
    let other = open(&disk, "other");
    write(&other, &[0u8; 64], 0);
    disk.set_faults(faults(|x| {
        x.read_bitflip_probability = 1.0;
        x.read_bitflip_file = Some("dump.rdb".into());
    }));
    let flipped: u32 = read_all(&disk, "dump.rdb").iter().map(|b| b.count_ones()).sum();
    assert_eq!(flipped, 1);
    assert_eq!(read_all(&disk, "other"), vec![0u8; 64]);
    assert_eq!(disk.cache_contents("dump.rdb").unwrap(), vec![0u8; 64]);
}

#[test]
fn latency_is_zero_without_faults_and_in_range_with_them() {
    let disk = SimDisk::new(1);
    assert_eq!(disk.latency_ms(), 0);
    disk.set_faults(faults(|x| (x.latency_min_ms, x.latency_max_ms) = (5, 20)));
    let draws: Vec<u64> = (0..200).map(|_| disk.latency_ms()).collect();
    assert!(draws.iter().all(|ms| (5..=20).contains(ms)));
    assert!(draws.contains(&5) && draws.contains(&20));
}

#[test]
fn bad_names_are_refused_and_missing_files_not_found() {
    let disk = SimDisk::new(1);
    for bad in ["", ".", "..", "a/b"] {
        assert_eq!(block_on(disk.open(bad, true)).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }
    assert_eq!(block_on(disk.open("nope", false)).unwrap_err().kind(), io::ErrorKind::NotFound);
    assert_eq!(block_on(disk.rename("nope", "x")).unwrap_err().kind(), io::ErrorKind::NotFound);
    assert_eq!(block_on(disk.remove("nope")).unwrap_err().kind(), io::ErrorKind::NotFound);
}

#[test]
fn stats_count_operations_and_failures() {
    let (disk, f) = disk_with("a", b"abc");
    disk.set_faults(faults(|x| x.fsync_eio_probability = 1.0));
    let _ = sync(&f);
    disk.process_crash();
    disk.power_fail(PowerLoss::LoseAll);
    let stats = disk.stats();
    assert_eq!((stats.writes, stats.bytes_written), (1, 3));
    assert_eq!((stats.fsyncs, stats.failed_fsyncs, stats.dir_syncs), (2, 1, 1));
    assert_eq!((stats.process_crashes, stats.power_failures), (1, 1));
}

#[test]
#[should_panic(expected = "outside 0..=1")]
fn fault_probability_above_one_is_refused() {
    SimDisk::new(1).set_faults(faults(|x| x.fsync_eio_probability = 1.5));
}

#[test]
fn subdir_entries_are_listed_and_made_durable_only_by_their_own_sync_dir() {
    let disk = SimDisk::new(3);
    let sub = block_on(disk.subdir("appendonlydir")).unwrap();
    let f = open(&sub, "a.aof");
    write(&f, b"data", 0);
    sync(&f).unwrap();
    let top = open(&disk, "dump.rdb");
    sync(&top).unwrap();
    assert_eq!(block_on(sub.list()).unwrap(), vec!["a.aof".to_string()]);
    assert_eq!(block_on(disk.list()).unwrap(), vec!["dump.rdb".to_string()]);
    sync_dir(&disk);
    assert_eq!(disk.durable_names(), vec!["dump.rdb".to_string()]);
    sync_dir(&sub);
    assert_eq!(disk.durable_names(), vec!["appendonlydir/a.aof".to_string(), "dump.rdb".to_string()]);
    block_on(sub.rename("a.aof", "b.aof")).unwrap();
    disk.power_fail(PowerLoss::LoseAll);
    assert_eq!(read_all(&sub, "a.aof"), b"data");
    assert!(block_on(sub.open("x/y", true)).is_err());
}
