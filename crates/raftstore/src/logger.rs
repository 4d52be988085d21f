//! raft-rs logs through slog; this drain forwards its records to `tracing` (target `raft`), dropping
//! the values that may carry entries (`msg`, `ents`), so command contents never reach a log.

use std::fmt::{self, Write as _};

use slog::{Drain, KV, Key, OwnedKVList, Record};

/// The slog logger handed to raft-rs.
pub(crate) fn raft_logger(id: u64) -> slog::Logger {
    slog::Logger::root(TracingDrain.fuse(), slog::o!("node" => id))
}

struct TracingDrain;

impl Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), slog::Never> {
        let mut fields = Fields(String::new());
        // Serialising into a String cannot fail; a failure would only lose fields of one line.
        let _ = record.kv().serialize(record, &mut fields);
        let _ = values.serialize(record, &mut fields);
        let msg = record.msg();
        match record.level() {
            slog::Level::Critical | slog::Level::Error => {
                tracing::error!(target: "raft", "{msg}{}", fields.0)
            }
            slog::Level::Warning => tracing::warn!(target: "raft", "{msg}{}", fields.0),
            slog::Level::Info => tracing::info!(target: "raft", "{msg}{}", fields.0),
            slog::Level::Debug => tracing::debug!(target: "raft", "{msg}{}", fields.0),
            slog::Level::Trace => tracing::trace!(target: "raft", "{msg}{}", fields.0),
        }
        Ok(())
    }
}

/// Values that may hold log entries, and so command contents.
const REDACTED: &[&str] = &["msg", "ents", "entries", "entry", "m"];

struct Fields(String);

impl slog::Serializer for Fields {
    fn emit_arguments(&mut self, key: Key, val: &fmt::Arguments<'_>) -> slog::Result {
        if REDACTED.contains(&key) {
            let _ = write!(self.0, " {key}=<redacted>");
        } else {
            let _ = write!(self.0, " {key}={val}");
        }
        Ok(())
    }
}
