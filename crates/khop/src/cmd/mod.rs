//! Subcommands, one module each.

pub mod datagen;
pub mod demo;
pub mod eval;
pub mod link;
mod progress;
pub mod remote;
pub mod serve;

/// Peak resident memory of this process so far, in bytes (Linux `VmHWM`); `None` elsewhere.
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
