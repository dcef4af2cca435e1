//! Property tests: random operation sequences under random faults, checked step by step
//! against a reference model written independently of SimDisk. The model follows the disk's
//! observed answers (how many bytes a write took, whether an fsync failed) and checks that the
//! contents, the directory and every power loss stay within what the fault model allows.

use std::collections::BTreeMap;

use super::tests::block_on;
use super::*;

const SEEDS: u64 = 300;
const OPS_PER_SEED: usize = 80;
const NAMES: [&str; 3] = ["appendonly.aof", "dump.rdb", "temp.rdb"];
const MAX_HANDLES: usize = 4;
/// The model's own sector size, not the disk's constant, so that a change to either shows.
const SECTOR: usize = 512;

#[derive(Clone, Debug)]
enum MOp {
    Write(usize, Vec<u8>),
    SetLen(usize),
}

#[derive(Clone, Debug, Default)]
struct MFile {
    cache: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<MOp>,
}

fn apply(bytes: &mut Vec<u8>, op: &MOp) {
    match op {
        MOp::Write(at, data) => {
            bytes.resize(bytes.len().max(at + data.len()), 0);
            bytes[*at..at + data.len()].copy_from_slice(data);
        }
        MOp::SetLen(len) => bytes.resize(*len, 0),
    }
}

/// The model's own cut of pending ops into what a power loss keeps or drops.
fn sectors(pending: &[MOp]) -> Vec<MOp> {
    let mut out = Vec::new();
    for op in pending {
        let MOp::Write(at, data) = op else {
            out.push(op.clone());
            continue;
        };
        for (i, byte) in data.iter().enumerate() {
            match out.last_mut() {
                Some(MOp::Write(start, d)) if i > 0 && (at + i) % SECTOR != 0 && *start + d.len() == at + i => {
                    d.push(*byte)
                }
                _ => out.push(MOp::Write(at + i, vec![*byte])),
            }
        }
    }
    out
}

/// Expected bytes after applying `fates`; `wild[i]` marks bytes a torn sector may have set.
fn settle(durable: &[u8], pieces: &[MOp], fates: &[SectorFate]) -> (Vec<u8>, Vec<bool>) {
    let (mut bytes, mut wild) = (durable.to_vec(), vec![false; durable.len()]);
    for (piece, fate) in pieces.iter().zip(fates) {
        let junk = match (fate, piece) {
            (SectorFate::Lost, _) => continue,
            (SectorFate::Kept, _) => false,
            (SectorFate::Garbage, MOp::Write(..)) => true,
            (SectorFate::Garbage, MOp::SetLen(_)) => panic!("a truncation tore"),
        };
        apply(&mut bytes, piece);
        let mask_op = match piece {
            MOp::Write(at, data) => MOp::Write(*at, vec![u8::from(junk); data.len()]),
            MOp::SetLen(len) => MOp::SetLen(*len),
        };
        let mut mask: Vec<u8> = wild.iter().map(|&w| u8::from(w)).collect();
        apply(&mut mask, &mask_op);
        wild = mask.into_iter().map(|m| m == 1).collect();
    }
    (bytes, wild)
}

fn check_fate_shape(mode: PowerLoss, pieces: &[MOp], fates: &[SectorFate]) {
    assert_eq!(pieces.len(), fates.len(), "one fate per piece");
    let tearable = |i: usize, garbage: bool| garbage && matches!(pieces[i], MOp::Write(..));
    match mode {
        PowerLoss::LoseAll => assert!(fates.iter().all(|&f| f == SectorFate::Lost)),
        PowerLoss::Prefix { torn_garbage } => {
            let kept = fates.iter().take_while(|&&f| f == SectorFate::Kept).count();
            for (i, &fate) in fates.iter().enumerate().skip(kept) {
                let torn_ok = i == kept && tearable(i, torn_garbage);
                assert!(fate == SectorFate::Lost || (fate == SectorFate::Garbage && torn_ok), "{fates:?}");
            }
        }
        PowerLoss::AnySector { torn_garbage } => {
            for (i, &fate) in fates.iter().enumerate() {
                assert!(fate != SectorFate::Garbage || tearable(i, torn_garbage), "{fates:?}");
            }
        }
    }
}

#[derive(Default)]
struct Model {
    files: Vec<MFile>,
    cache_dir: BTreeMap<String, usize>,
    durable_dir: BTreeMap<String, usize>,
}

impl Model {
    fn sync(&mut self, id: usize, ok: bool) {
        let f = &mut self.files[id];
        for op in std::mem::take(&mut f.pending) {
            if ok {
                apply(&mut f.durable, &op);
            }
        }
    }

    fn writeback(&mut self) {
        for id in 0..self.files.len() {
            self.sync(id, true);
        }
        self.durable_dir = self.cache_dir.clone();
    }

    /// Checks one file's fates and contents after a power loss, then adopts what the disk holds.
    fn settle_file(&mut self, disk: &SimDisk, name: &str, mode: PowerLoss, report: &PowerLossReport) {
        let id = self.durable_dir[name];
        let f = &mut self.files[id];
        let pieces = sectors(&f.pending);
        let no_fates = Vec::new();
        let fates = report.files.get(name).unwrap_or(&no_fates);
        check_fate_shape(mode, &pieces, fates);
        let (expected, wild) = settle(&f.durable, &pieces, fates);
        let actual = disk.durable_contents(name).unwrap();
        assert_eq!(actual.len(), expected.len(), "{name}: length after power loss");
        let differs = |i: &usize| !wild[*i] && actual[*i] != expected[*i];
        assert_eq!((0..actual.len()).find(differs), None, "{name}: byte outside the model");
        *f = MFile { cache: actual.clone(), durable: actual, pending: Vec::new() };
    }

    fn power_fail(&mut self, disk: &SimDisk, mode: PowerLoss, report: &PowerLossReport) {
        let names: Vec<String> = self.durable_dir.keys().cloned().collect();
        for name in &names {
            self.settle_file(disk, name, mode, report);
        }
        assert!(report.files.keys().all(|n| self.durable_dir.contains_key(n)));
        self.cache_dir = self.durable_dir.clone();
    }
}

/// What a run of one seed may draw: the power-loss modes and which faults are on.
#[derive(Clone, Copy)]
struct Swarm {
    modes: &'static [PowerLoss],
    faults: bool,
}

const ALL_MODES: &[PowerLoss] = &[
    PowerLoss::LoseAll,
    PowerLoss::Prefix { torn_garbage: false },
    PowerLoss::Prefix { torn_garbage: true },
    PowerLoss::AnySector { torn_garbage: false },
    PowerLoss::AnySector { torn_garbage: true },
];

fn pick<T: Copy>(rng: &mut SeededRng, from: &[T]) -> T {
    from[rng.below(from.len() as u64) as usize]
}

fn probability(rng: &mut SeededRng) -> f64 {
    pick(rng, &[0.0, 0.0, 0.05, 0.3])
}

fn random_faults(rng: &mut SeededRng) -> DiskFaults {
    DiskFaults {
        fsync_eio_probability: probability(rng),
        write_eio_probability: probability(rng),
        short_write_probability: probability(rng),
        capacity_bytes: pick(rng, &[None, None, Some(3000), Some(8000)]),
        ..DiskFaults::default()
    }
}

struct Run {
    disk: SimDisk,
    model: Model,
    handles: Vec<(SimFile, usize)>,
    rng: SeededRng,
    swarm: Swarm,
    /// Every outcome, compared across two runs of one seed.
    transcript: Vec<String>,
}

impl Run {
    fn new(seed: u64, swarm: Swarm) -> Self {
        let mut rng = SeededRng::from_seed(seed ^ 0x5eed_d15c);
        let disk = SimDisk::new(seed);
        if swarm.faults {
            disk.set_faults(random_faults(&mut rng));
        }
        Run { disk, model: Model::default(), handles: Vec::new(), rng, swarm, transcript: Vec::new() }
    }

    fn name(&mut self) -> &'static str {
        pick(&mut self.rng, &NAMES)
    }

    fn step(&mut self) {
        match self.rng.below(100) {
            0..=11 => self.open(),
            12..=44 => self.write(),
            45..=48 => self.set_len(),
            49..=64 => self.sync(),
            65..=72 => self.sync_dir(),
            73..=78 => self.rename(),
            79..=81 => self.remove(),
            82..=85 => self.process_crash(),
            86..=87 => self.writeback(),
            _ => self.power_fail(),
        }
        self.check_contents();
    }

    fn open(&mut self) {
        let (name, create) = (self.name(), self.rng.below(4) != 0);
        let result = block_on(self.disk.open(name, create));
        self.transcript.push(format!("open {name} {create}: {:?}", result.as_ref().err()));
        let id = match (self.model.cache_dir.get(name), create) {
            (Some(&id), _) => id,
            (None, true) => {
                self.model.files.push(MFile::default());
                self.model.cache_dir.insert(name.to_string(), self.model.files.len() - 1);
                self.model.files.len() - 1
            }
            (None, false) => return assert_eq!(result.unwrap_err().kind(), io::ErrorKind::NotFound),
        };
        self.handles.push((result.unwrap(), id));
        if self.handles.len() > MAX_HANDLES {
            self.handles.remove(0);
        }
    }

    fn handle(&mut self) -> Option<usize> {
        (!self.handles.is_empty()).then(|| self.rng.below(self.handles.len() as u64) as usize)
    }

    fn write(&mut self) {
        let Some(h) = self.handle() else { return };
        let id = self.handles[h].1;
        let len = self.model.files[id].cache.len();
        let at = if self.rng.below(3) == 0 { self.rng.below(len as u64 + 600) as usize } else { len };
        let mut data = vec![0u8; 1 + self.rng.below(1500) as usize];
        self.rng.fill(&mut data);
        let result = block_on(self.handles[h].0.write_at(&data, at as u64));
        self.transcript.push(format!("write {id} @{at} +{}: {result:?}", data.len()));
        if let Ok(n) = result {
            assert!((1..=data.len()).contains(&n), "a write lands 1..=len bytes");
            let op = MOp::Write(at, data[..n].to_vec());
            apply(&mut self.model.files[id].cache, &op);
            self.model.files[id].pending.push(op);
        }
    }

    fn set_len(&mut self) {
        let Some(h) = self.handle() else { return };
        let id = self.handles[h].1;
        let len = self.rng.below(self.model.files[id].cache.len() as u64 + 700) as usize;
        let result = block_on(self.handles[h].0.set_len(len as u64));
        self.transcript.push(format!("set_len {id} {len}: {result:?}"));
        if result.is_ok() {
            apply(&mut self.model.files[id].cache, &MOp::SetLen(len));
            self.model.files[id].pending.push(MOp::SetLen(len));
        }
    }

    fn durable_image(&self) -> Vec<(String, Option<Vec<u8>>)> {
        NAMES.iter().map(|n| (n.to_string(), self.disk.durable_contents(n))).collect()
    }

    fn sync(&mut self) {
        let Some(h) = self.handle() else { return };
        let before = self.durable_image();
        let result = block_on(self.handles[h].0.sync_data());
        self.transcript.push(format!("sync {}: {result:?}", self.handles[h].1));
        if result.is_err() {
            assert_eq!(before, self.durable_image(), "a failed fsync made something durable");
        }
        self.model.sync(self.handles[h].1, result.is_ok());
    }

    fn sync_dir(&mut self) {
        block_on(self.disk.sync_dir()).unwrap();
        self.model.durable_dir = self.model.cache_dir.clone();
    }

    fn rename(&mut self) {
        let (from, to) = (self.name(), self.name());
        let result = block_on(self.disk.rename(from, to));
        self.transcript.push(format!("rename {from} {to}: {result:?}"));
        match self.model.cache_dir.remove(from) {
            Some(id) => {
                result.unwrap();
                self.model.cache_dir.insert(to.to_string(), id);
            }
            None => assert_eq!(result.unwrap_err().kind(), io::ErrorKind::NotFound),
        }
    }

    fn remove(&mut self) {
        let name = self.name();
        let result = block_on(self.disk.remove(name));
        match self.model.cache_dir.remove(name) {
            Some(_) => result.unwrap(),
            None => assert_eq!(result.unwrap_err().kind(), io::ErrorKind::NotFound),
        }
    }

    fn process_crash(&mut self) {
        let cache: Vec<_> = NAMES.iter().map(|n| self.disk.cache_contents(n)).collect();
        self.disk.process_crash();
        self.handles.clear();
        let after: Vec<_> = NAMES.iter().map(|n| self.disk.cache_contents(n)).collect();
        assert_eq!(cache, after, "a process crash changed the page cache");
    }

    fn writeback(&mut self) {
        self.disk.writeback();
        self.model.writeback();
    }

    fn power_fail(&mut self) {
        let mode = pick(&mut self.rng, self.swarm.modes);
        let report = self.disk.power_fail(mode);
        self.transcript.push(format!("power_fail {mode:?}: {report:?}"));
        self.handles.clear();
        self.model.power_fail(&self.disk, mode, &report);
    }

    fn check_contents(&self) {
        let names = |dir: &BTreeMap<String, usize>| dir.keys().cloned().collect::<Vec<_>>();
        assert_eq!(self.disk.cached_names(), names(&self.model.cache_dir));
        assert_eq!(self.disk.durable_names(), names(&self.model.durable_dir));
        for (name, &id) in &self.model.cache_dir {
            assert_eq!(self.disk.cache_contents(name).unwrap(), self.model.files[id].cache, "cache of {name}");
        }
        for (name, &id) in &self.model.durable_dir {
            assert_eq!(self.disk.durable_contents(name).unwrap(), self.model.files[id].durable, "{name}");
        }
    }
}

/// Runs one seed to a final power loss and returns its transcript; panics name the seed.
fn run_seed(seed: u64, swarm: Swarm) -> Vec<String> {
    let mut run = Run::new(seed, swarm);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for _ in 0..OPS_PER_SEED {
            run.step();
        }
        run.power_fail();
        run.check_contents();
    }));
    if let Err(panic) = outcome {
        let last: Vec<_> = run.transcript.iter().rev().take(8).collect();
        eprintln!("SimDisk property failed at seed {seed}; last ops, newest first: {last:#?}");
        std::panic::resume_unwind(panic);
    }
    run.transcript.push(format!("{:?}", run.disk.stats()));
    run.transcript
}

fn run_seeds(modes: &'static [PowerLoss], faults: bool) {
    for seed in 0..SEEDS {
        run_seed(seed, Swarm { modes, faults });
    }
}

#[test]
fn lose_all_leaves_exactly_the_synced_image() {
    run_seeds(&[PowerLoss::LoseAll], true);
}

#[test]
fn prefix_loss_keeps_a_sector_prefix_of_pending_writes() {
    run_seeds(&[PowerLoss::Prefix { torn_garbage: false }], true);
}

#[test]
fn any_sector_loss_leaves_each_sector_old_or_new() {
    run_seeds(&[PowerLoss::AnySector { torn_garbage: false }], true);
}

#[test]
fn torn_garbage_lands_only_on_bytes_a_lost_write_targeted() {
    run_seeds(&[PowerLoss::Prefix { torn_garbage: true }, PowerLoss::AnySector { torn_garbage: true }], true);
}

#[test]
fn fault_free_disk_matches_the_model_in_every_mode() {
    run_seeds(ALL_MODES, false);
}

#[test]
fn same_seed_replays_the_same_run() {
    for seed in 0..50 {
        let swarm = Swarm { modes: ALL_MODES, faults: true };
        assert_eq!(run_seed(seed, swarm), run_seed(seed, swarm), "seed {seed}");
    }
    let swarm = Swarm { modes: ALL_MODES, faults: true };
    assert_ne!(run_seed(1, swarm), run_seed(2, swarm));
}
