//! Subcommands, one module each.

/// `println!` for command output: a reader that went away (`khop status | head -1`) ends the
/// process quietly with status 0, as Unix tools do, where `println!` panics on the closed pipe.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cmd::write_line(format_args!($($arg)*))
    };
}

pub mod datagen;
pub mod demo;
pub mod eval;
pub mod link;
pub mod profile;
mod progress;
pub mod remote;
pub mod serve;

/// Writes one line to stdout (see [`say!`]); any error but a closed pipe is reported on stderr.
pub fn write_line(line: std::fmt::Arguments) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(line).and_then(|()| out.write_all(b"\n")) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing to stdout: {e}");
        std::process::exit(1);
    }
}

/// Peak resident memory of this process so far, in bytes (Linux `VmHWM`); `None` elsewhere.
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
