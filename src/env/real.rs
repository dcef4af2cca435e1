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

// Compiled in the simulator build too, where madsim deprecates spawn_blocking; only the
// real server runs it.
#[cfg_attr(madsim, allow(deprecated))]
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
    fn disk_at(&self, dir: &str) -> io::Result<RealDisk> {
        Ok(if dir.is_empty() { self.disk.clone() } else { RealDisk::new(dir) })
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

    #[cfg(not(madsim))]
    type Child = ForkChild;
    #[cfg(madsim)]
    type Child = super::MemChild<TokioClock>;

    #[cfg(not(madsim))]
    fn fork_snapshot<F: FnOnce(&mut dyn std::io::Write) -> io::Result<()>>(&self, write: F) -> io::Result<ForkChild> {
        fork_child(write)
    }
    #[cfg(madsim)]
    fn fork_snapshot<F: FnOnce(&mut dyn std::io::Write) -> io::Result<()>>(&self, write: F) -> io::Result<Self::Child> {
        Ok(super::MemChild::run(std::process::id() + 1, self.clock.clone(), write))
    }
}

/// Bytes the forked child buffers before each write to the pipe, and the parent reads at once.
#[cfg(not(madsim))]
const FORK_PIPE_CHUNK: usize = 64 * 1024;

/// A forked snapshot writer: its pid and the read end of its pipe. Dropped before it was
/// waited for, it kills and reaps the child so that no zombie is left.
#[cfg(not(madsim))]
pub struct ForkChild {
    pid: libc::pid_t,
    pipe: Arc<std::fs::File>,
    reaped: bool,
}

/// The write end of the pipe, as the child sees it: plain `write(2)`, no std machinery.
#[cfg(not(madsim))]
struct PipeWriter(libc::c_int);

#[cfg(not(madsim))]
impl std::io::Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            // SAFETY: buf is a valid readable slice; self.0 is the open write end.
            let n = unsafe { libc::write(self.0, buf.as_ptr().cast(), buf.len()) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// fork(2) with a pipe from child to parent. The child runs `write` over a copy-on-write image
/// of the parent (the dataset as of the fork, the parent's locks frozen: it must take none),
/// then `_exit`s with 0 on success, 1 on an error or a panic, never returning into the runtime.
#[cfg(not(madsim))]
fn fork_child<F: FnOnce(&mut dyn std::io::Write) -> io::Result<()>>(write: F) -> io::Result<ForkChild> {
    use std::os::fd::FromRawFd;
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let (rfd, wfd) = (fds[0], fds[1]);
    // SAFETY: fork has no preconditions; the child below only writes to its pipe and exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let e = io::Error::last_os_error();
        // SAFETY: both descriptors are ours and open.
        unsafe {
            libc::close(rfd);
            libc::close(wfd);
        }
        return Err(e);
    }
    if pid == 0 {
        // SAFETY: the child closes its copy of the read end, then never returns.
        unsafe { libc::close(rfd) };
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut out = std::io::BufWriter::with_capacity(FORK_PIPE_CHUNK, PipeWriter(wfd));
            write(&mut out).and_then(|()| std::io::Write::flush(&mut out))
        }))
        .is_ok_and(|r| r.is_ok());
        // SAFETY: _exit skips atexit handlers and destructors that belong to the parent.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    // SAFETY: the parent closes the write end so that EOF comes when the child exits; rfd is
    // an open descriptor it owns from here on.
    let pipe = unsafe {
        libc::close(wfd);
        std::fs::File::from_raw_fd(rfd)
    };
    Ok(ForkChild { pid, pipe: Arc::new(pipe), reaped: false })
}

#[cfg(not(madsim))]
fn waitpid(pid: libc::pid_t) -> io::Result<bool> {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out-pointer; pid is our unreaped child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return Ok(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(not(madsim))]
impl super::SnapshotChild for ForkChild {
    fn pid(&self) -> u32 {
        self.pid as u32
    }
    async fn read_chunk(&mut self) -> io::Result<Vec<u8>> {
        let pipe = self.pipe.clone();
        blocking(move || {
            let mut buf = vec![0u8; FORK_PIPE_CHUNK];
            let n = loop {
                match std::io::Read::read(&mut &*pipe, &mut buf) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    r => break r?,
                }
            };
            buf.truncate(n);
            Ok(buf)
        })
        .await
    }
    async fn wait(&mut self) -> io::Result<bool> {
        if self.reaped {
            return Ok(false);
        }
        let pid = self.pid;
        let r = blocking(move || waitpid(pid)).await;
        self.reaped = true;
        r
    }
    fn kill(&mut self) {
        if !self.reaped {
            // SAFETY: pid is our own unreaped child. SIGUSR1, as Redis: a deliberate kill.
            unsafe { libc::kill(self.pid, libc::SIGUSR1) };
        }
    }
}

#[cfg(not(madsim))]
impl Drop for ForkChild {
    fn drop(&mut self) {
        if !self.reaped {
            super::SnapshotChild::kill(self);
            let _ = waitpid(self.pid);
        }
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

/// A whole file's bytes (`redsim check-rdb`).
pub fn read_file(path: &str) -> io::Result<Vec<u8>> {
    std::fs::read(path)
}

/// Makes `dir` the working directory; the absolute path of it, as CONFIG GET dir shows it.
pub fn enter_dir(dir: &str) -> io::Result<String> {
    std::env::set_current_dir(dir)?;
    Ok(std::env::current_dir()?.to_string_lossy().into_owned())
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
