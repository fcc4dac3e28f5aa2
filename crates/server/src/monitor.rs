//! The system monitor: CPU, memory and disk from /proc and statvfs, GPUs through NVML when its
//! library is present (loaded at run time, so the server needs no CUDA to build or run), and
//! the running jobs with their processes' CPU and memory. Sampled every few seconds into a
//! short ring (replayed to a reconnecting client from `since`) and broadcast on the `system`
//! WebSocket channel.

use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub time: f64,
    pub cpu: Cpu,
    pub memory: Memory,
    pub disk: Disk,
    pub gpus: Vec<Gpu>,
    pub gpu_note: Option<String>,
    pub jobs: Vec<JobProc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cpu {
    pub cores: usize,
    pub percent: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    pub total_bytes: u64,
    pub used_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Disk {
    pub path: String,
    pub total_bytes: u64,
    pub free_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Gpu {
    pub name: String,
    pub util_percent: u32,
    pub mem_used_bytes: u64,
    pub mem_total_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct JobProc {
    pub id: i64,
    pub status: String,
    pub pid: u32,
    /// Share of one core over the last interval (200 = two cores busy).
    pub cpu_percent: f64,
    pub rss_bytes: u64,
}

/// CPU time counters: (busy, total) for the machine, ticks per job pid.
#[derive(Default)]
struct Prev {
    cpu: Option<(u64, u64)>,
    pids: HashMap<u32, u64>,
    at: Option<std::time::Instant>,
}

pub struct Monitor {
    disk_path: PathBuf,
    prev: Mutex<Prev>,
    /// The last `RING` messages as sent (the newest's sequence number gives the next one).
    ring: Mutex<VecDeque<crate::hub::Wire>>,
    latest: Mutex<Option<Snapshot>>,
    pub tx: broadcast::Sender<crate::hub::Wire>,
}

const RING: usize = 120;

fn proc_stat() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let v: Vec<u64> = s.lines().next()?.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    let total: u64 = v.iter().take(8).sum();
    Some((total - idle, total))
}

fn meminfo() -> Memory {
    let s = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |k: &str| s.lines().find(|l| l.starts_with(k)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) * 1024;
    let (total, avail) = (field("MemTotal:"), field("MemAvailable:"));
    Memory { total_bytes: total, used_bytes: total.saturating_sub(avail) }
}

fn disk(path: &std::path::Path) -> Disk {
    let mut out = Disk { path: path.display().to_string(), total_bytes: 0, free_bytes: 0 };
    if let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) {
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: a valid NUL-terminated path and a zeroed out-struct.
        if unsafe { libc::statvfs(c.as_ptr(), &mut st) } == 0 {
            out.total_bytes = st.f_blocks as u64 * st.f_frsize as u64;
            out.free_bytes = st.f_bavail as u64 * st.f_frsize as u64;
        }
    }
    out
}

/// utime + stime ticks and resident bytes of a process.
fn proc_usage(pid: u32) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name (which may contain spaces).
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let rss_pages: u64 = f.get(21)?.parse().ok()?;
    Some((ticks, rss_pages * 4096))
}

mod nvml {
    //! The few NVML calls the monitor needs, bound at run time.
    use std::ffi::{c_char, c_void};
    use std::sync::OnceLock;

    #[repr(C)]
    struct Util {
        gpu: u32,
        memory: u32,
    }
    #[repr(C)]
    struct Mem {
        total: u64,
        free: u64,
        used: u64,
    }

    pub struct Nvml {
        _lib: libloading::Library,
        count: unsafe extern "C" fn(*mut u32) -> i32,
        handle: unsafe extern "C" fn(u32, *mut *mut c_void) -> i32,
        name: unsafe extern "C" fn(*mut c_void, *mut c_char, u32) -> i32,
        util: unsafe extern "C" fn(*mut c_void, *mut Util) -> i32,
        mem: unsafe extern "C" fn(*mut c_void, *mut Mem) -> i32,
    }

    fn load() -> Result<Nvml, String> {
        // SAFETY: loading the vendor library and looking up documented NVML entry points with
        // their documented signatures.
        unsafe {
            let lib = libloading::Library::new("libnvidia-ml.so.1").map_err(|_| "no GPU (NVML library libnvidia-ml.so.1 not found)".to_string())?;
            let init: libloading::Symbol<unsafe extern "C" fn() -> i32> = lib.get(b"nvmlInit_v2").map_err(|e| e.to_string())?;
            let rc = init();
            if rc != 0 {
                return Err(format!("NVML init failed (code {rc})"));
            }
            let n = Nvml {
                count: *lib.get(b"nvmlDeviceGetCount_v2").map_err(|e| e.to_string())?,
                handle: *lib.get(b"nvmlDeviceGetHandleByIndex_v2").map_err(|e| e.to_string())?,
                name: *lib.get(b"nvmlDeviceGetName").map_err(|e| e.to_string())?,
                util: *lib.get(b"nvmlDeviceGetUtilizationRates").map_err(|e| e.to_string())?,
                mem: *lib.get(b"nvmlDeviceGetMemoryInfo").map_err(|e| e.to_string())?,
                _lib: lib,
            };
            Ok(n)
        }
    }

    pub fn gpus() -> Result<Vec<super::Gpu>, String> {
        static NVML: OnceLock<Result<Nvml, String>> = OnceLock::new();
        let n = NVML.get_or_init(load).as_ref().map_err(Clone::clone)?;
        let mut out = Vec::new();
        // SAFETY: out-pointers to live locals, sizes as NVML documents them.
        unsafe {
            let mut count = 0u32;
            if (n.count)(&mut count) != 0 {
                return Err("NVML could not count devices".into());
            }
            for i in 0..count {
                let mut h = std::ptr::null_mut();
                if (n.handle)(i, &mut h) != 0 {
                    continue;
                }
                let mut name = [0 as c_char; 96];
                (n.name)(h, name.as_mut_ptr(), name.len() as u32);
                let name = std::ffi::CStr::from_ptr(name.as_ptr()).to_string_lossy().to_string();
                let mut u = Util { gpu: 0, memory: 0 };
                (n.util)(h, &mut u);
                let mut m = Mem { total: 0, free: 0, used: 0 };
                (n.mem)(h, &mut m);
                out.push(super::Gpu { name, util_percent: u.gpu, mem_used_bytes: m.used, mem_total_bytes: m.total });
            }
        }
        Ok(out)
    }
}

impl Monitor {
    pub fn new(disk_path: PathBuf) -> Arc<Monitor> {
        let (tx, _) = broadcast::channel(64);
        Arc::new(Monitor { disk_path, prev: Mutex::new(Prev::default()), ring: Mutex::new(VecDeque::new()), latest: Mutex::new(None), tx })
    }

    /// Measures now; CPU shares are over the time since the previous sample.
    pub fn sample(&self, jobs: &[(i64, u32)]) -> Snapshot {
        let mut prev = self.prev.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        let secs = prev.at.map(|t| now.duration_since(t).as_secs_f64()).unwrap_or(0.0);
        let cpu_now = proc_stat();
        let percent = match (prev.cpu, cpu_now) {
            (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => 100.0 * (b1 - b0) as f64 / (t1 - t0) as f64,
            _ => 0.0,
        };
        let tick = 100.0; // USER_HZ on Linux
        let mut pids = HashMap::new();
        let procs = jobs
            .iter()
            .map(|&(id, pid)| {
                let (ticks, rss) = proc_usage(pid).unwrap_or((0, 0));
                let cpu = match prev.pids.get(&pid) {
                    Some(&t0) if secs > 0.0 && ticks >= t0 => 100.0 * (ticks - t0) as f64 / tick / secs,
                    _ => 0.0,
                };
                pids.insert(pid, ticks);
                JobProc { id, status: "running".into(), pid, cpu_percent: cpu, rss_bytes: rss }
            })
            .collect();
        *prev = Prev { cpu: cpu_now, pids, at: Some(now) };
        let (gpus, gpu_note) = match nvml::gpus() {
            Ok(g) => (g, None),
            Err(e) => (vec![], Some(e)),
        };
        Snapshot {
            time: tinycats_track::now(),
            cpu: Cpu { cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1), percent },
            memory: meminfo(),
            disk: disk(&self.disk_path),
            gpus,
            gpu_note,
            jobs: procs,
        }
    }

    /// Keeps a snapshot (latest and in the ring, with the next sequence number) and broadcasts it.
    pub fn publish(&self, s: &Snapshot) {
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let seq = ring.back().map(|w| w.0 + 1).unwrap_or(1);
        let wire: crate::hub::Wire = Arc::new((seq, crate::hub::event_message("system", seq, &serde_json::to_value(s).unwrap_or_default())));
        ring.push_back(wire.clone());
        while ring.len() > RING {
            ring.pop_front();
        }
        *self.latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(s.clone());
        let _ = self.tx.send(wire);
    }

    /// Messages after `since` still in the ring (a reconnecting monitor page's replay).
    pub fn since(&self, since: i64) -> Vec<(i64, String)> {
        self.ring.lock().unwrap_or_else(|e| e.into_inner()).iter().filter(|w| w.0 > since).map(|w| (w.0, w.1.clone())).collect()
    }

    /// The newest published snapshot.
    pub fn latest(&self) -> Option<Snapshot> {
        self.latest.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
