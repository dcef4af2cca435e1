//! The real backend: tokio networking and timers, `std::fs` with real file and directory
//! fsync. Under `--cfg madsim`, `tokio` is madsim's, so `TokioClock` and `TokioNet` are the
//! simulated clock and network there; the simulator wraps them with its faults.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Clock, Disk, DiskFile, Env, Listener, Net, SeededRng};

/// Monotonic time from tokio's `Instant` (virtual under madsim), wall time from `SystemTime`
/// (madsim overrides `clock_gettime`, so it is virtual there too).
#[derive(Clone, Debug)]
pub struct TokioClock {
    origin: tokio::time::Instant,
}

impl TokioClock {
    pub fn new() -> Self {
        TokioClock { origin: tokio::time::Instant::now() }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }
    fn now_us(&self) -> u64 {
        self.origin.elapsed().as_micros() as u64
    }
    fn unix_ms(&self) -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }
    fn unix_us(&self) -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
    }
    fn sleep_ms(&self, ms: u64) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(std::time::Duration::from_millis(ms))
    }
}

#[derive(Clone, Debug, Default)]
pub struct TokioNet;

pub struct TokioListener(tokio::net::TcpListener);

impl Listener for TokioListener {
    type Conn = tokio::net::TcpStream;
    async fn accept(&self) -> io::Result<(tokio::net::TcpStream, SocketAddr)> {
        let (s, a) = self.0.accept().await?;
        let _ = s.set_nodelay(true);
        Ok((s, a))
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl Net for TokioNet {
    type Conn = tokio::net::TcpStream;
    type Listener = TokioListener;
    async fn bind(&self, addr: SocketAddr) -> io::Result<TokioListener> {
        Ok(TokioListener(tokio::net::TcpListener::bind(addr).await?))
    }
    async fn connect(&self, addr: SocketAddr) -> io::Result<tokio::net::TcpStream> {
        let s = tokio::net::TcpStream::connect(addr).await?;
        let _ = s.set_nodelay(true);
        Ok(s)
    }
}

/// A directory on the real file system. Reads and writes run inline (they hit the page
/// cache, as Redis's own write() does); fsyncs run on a blocking thread.
#[derive(Clone, Debug)]
pub struct RealDisk {
    dir: Arc<PathBuf>,
}

impl RealDisk {
    pub fn new(dir: impl AsRef<Path>) -> Self {
        RealDisk { dir: Arc::new(dir.as_ref().to_path_buf()) }
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    fn path(&self, name: &str) -> io::Result<PathBuf> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("bad file name {name:?}")));
        }
        Ok(self.dir.join(name))
    }
}

pub struct RealFile(Arc<std::fs::File>);

impl DiskFile for RealFile {
    async fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(&*self.0, buf, offset)
    }
    async fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        std::os::unix::fs::FileExt::write_at(&*self.0, buf, offset)
    }
    async fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    async fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    async fn sync_data(&self) -> io::Result<()> {
        let f = self.0.clone();
        blocking(move || f.sync_data()).await
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(io::Error::other(e.to_string())),
    }
}

impl Disk for RealDisk {
    type File = RealFile;
    async fn open(&self, name: &str, create: bool) -> io::Result<RealFile> {
        let p = self.path(name)?;
        let f = std::fs::OpenOptions::new().read(true).write(true).create(create).open(p)?;
        Ok(RealFile(Arc::new(f)))
    }
    async fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        std::fs::rename(self.path(from)?, self.path(to)?)
    }
    async fn remove(&self, name: &str) -> io::Result<()> {
        std::fs::remove_file(self.path(name)?)
    }
    async fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for e in std::fs::read_dir(&*self.dir)? {
            let e = e?;
            if e.file_type()?.is_file() {
                names.push(e.file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        Ok(names)
    }
    async fn sync_dir(&self) -> io::Result<()> {
        let dir = self.dir.clone();
        blocking(move || std::fs::File::open(&*dir)?.sync_all()).await
    }
    async fn subdir(&self, name: &str) -> io::Result<RealDisk> {
        let p = self.path(name)?;
        match std::fs::create_dir(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && p.is_dir() => {}
            Err(e) => return Err(e),
        }
        Ok(RealDisk::new(p))
    }
}

/// The real server's environment.
#[derive(Clone)]
pub struct RealEnv {
    clock: TokioClock,
    net: TokioNet,
    disk: RealDisk,
    /// Where log lines go: a file path, or stdout when `None` (Redis's `logfile ""`).
    logfile: Arc<Option<PathBuf>>,
}

impl RealEnv {
    pub fn new(dir: impl AsRef<Path>, logfile: Option<PathBuf>) -> Self {
        RealEnv { clock: TokioClock::new(), net: TokioNet, disk: RealDisk::new(dir), logfile: Arc::new(logfile) }
    }
}

impl Env for RealEnv {
    type Clock = TokioClock;
    type Net = TokioNet;
    type Disk = RealDisk;
    fn clock(&self) -> &TokioClock {
        &self.clock
    }
    fn net(&self) -> &TokioNet {
        &self.net
    }
    fn disk(&self) -> &RealDisk {
        &self.disk
    }
    fn rng(&self) -> SeededRng {
        let mut seed = [0u8; 8];
        // Seeded from the OS once per generator; node code never sees the source.
        if getrandom(&mut seed).is_err() {
            seed = (self.clock.unix_ms() ^ u64::from(std::process::id())).to_le_bytes();
        }
        SeededRng::from_seed(u64::from_le_bytes(seed))
    }
    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, fut: F) {
        tokio::spawn(fut);
    }
    fn process_id(&self) -> u32 {
        std::process::id()
    }
    fn rss_bytes(&self) -> u64 {
        process_rss_bytes()
    }
    fn used_memory(&self) -> u64 {
        super::alloc::used_memory() as u64
    }
    fn allocator_stats(&self) -> Option<(u64, u64, u64)> {
        super::alloc::allocator_stats()
    }
    fn log_line(&self, line: &str) {
        use std::io::Write;
        match &*self.logfile {
            Some(path) => {
                if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
                    let _ = writeln!(f, "{line}");
                }
            }
            None => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
        }
    }
    fn cpu_usage(&self) -> (f64, f64) {
        process_cpu_usage()
    }
}

fn getrandom(buf: &mut [u8]) -> io::Result<()> {
    // SAFETY: buf is a valid writable slice of buf.len() bytes.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n as usize == buf.len() {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// RSS from /proc/self/statm (pages × page size), 0 where unknown.
pub fn process_rss_bytes() -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: u64 = s.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page.max(0) as u64
}

pub fn process_cpu_usage() -> (f64, f64) {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return (0.0, 0.0);
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (tv(ru.ru_utime), tv(ru.ru_stime))
}

/// The process's edge, used by `main` only: files outside the data directory.
pub fn read_config_file(path: &str) -> io::Result<String> {
    if path == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        return Ok(s);
    }
    std::fs::read_to_string(path)
}

pub fn enter_dir(dir: &str) -> io::Result<()> {
    std::env::set_current_dir(dir)
}

pub fn write_pidfile(path: &str) -> io::Result<()> {
    std::fs::write(path, format!("{}\n", std::process::id()))
}

pub fn remove_file(path: &str) -> io::Result<()> {
    std::fs::remove_file(path)
}

/// The tokio runtime of the real server: one thread, as Redis, unless `io-threads` asks for
/// more (then socket reads and writes run in parallel; commands still run one at a time).
#[cfg(not(madsim))]
pub fn runtime(threads: usize) -> tokio::runtime::Runtime {
    let mut b = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    b.enable_all().build().expect("tokio runtime")
}
