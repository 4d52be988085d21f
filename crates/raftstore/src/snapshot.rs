//! The state machine snapshot: its wire form (Raft snapshot data) and its file, written atomically so the
//! state and the index it was taken at can never disagree on disk.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use protobuf::Message as _;
use raft::eraftpb::Snapshot;

use crate::RaftError;

const FILE: &str = "snapshot";
const MAGIC: &[u8; 8] = b"KHOPSNP1";

/// Snapshot data: the members' addresses, then the state machine's bytes.
/// Layout (little endian): `u32 n`, then `n × (u64 id, u32 len, address)`, then the state to the end.
pub(crate) fn encode_data(addresses: &BTreeMap<u64, String>, state: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(state.len() + 64);
    out.extend_from_slice(&(addresses.len() as u32).to_le_bytes());
    for (id, addr) in addresses {
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&(addr.len() as u32).to_le_bytes());
        out.extend_from_slice(addr.as_bytes());
    }
    out.extend_from_slice(state);
    out
}

/// The inverse of [`encode_data`].
pub(crate) fn decode_data(data: &[u8]) -> Result<(BTreeMap<u64, String>, &[u8]), RaftError> {
    let bad = || RaftError::Storage("malformed snapshot data".to_string());
    let mut rest = data;
    let mut take = |n: usize| -> Result<&[u8], RaftError> {
        if rest.len() < n {
            return Err(bad());
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    let count = u32::from_le_bytes(take(4)?.try_into().map_err(|_| bad())?);
    let mut addresses = BTreeMap::new();
    for _ in 0..count {
        let id = u64::from_le_bytes(take(8)?.try_into().map_err(|_| bad())?);
        let len = u32::from_le_bytes(take(4)?.try_into().map_err(|_| bad())?) as usize;
        let addr = std::str::from_utf8(take(len)?).map_err(|_| bad())?;
        addresses.insert(id, addr.to_string());
    }
    Ok((addresses, rest))
}

/// Writes the snapshot (metadata and data) to `dir/snapshot`: tmp file, fsync, rename, fsync of the dir.
pub(crate) fn write_file(dir: &Path, snapshot: &Snapshot) -> Result<(), RaftError> {
    let path = dir.join(FILE);
    let tmp = dir.join(format!("{FILE}.tmp"));
    let mut file = File::create(&tmp)?;
    file.write_all(MAGIC)?;
    file.write_all(&snapshot.write_to_bytes()?)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, &path)?;
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// The snapshot last written to `dir`, if any.
pub(crate) fn read_file(dir: &Path) -> Result<Option<Snapshot>, RaftError> {
    let path: PathBuf = dir.join(FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let body = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or_else(|| RaftError::Storage(format!("{} is not a khop snapshot", path.display())))?;
    Ok(Some(Snapshot::parse_from_bytes(body)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_round_trips() {
        type Case<'a> = (&'a [(u64, &'a str)], &'a [u8]);
        let cases: &[Case] = &[
            (&[], b""),
            (&[(1, "http://127.0.0.1:1")], b"state"),
            (&[(1, "http://a:1"), (7, "")], &[0, 1, 2, 255]),
        ];
        for (addresses, state) in cases {
            let addresses: BTreeMap<u64, String> = addresses
                .iter()
                .map(|(id, a)| (*id, a.to_string()))
                .collect();
            let data = encode_data(&addresses, state);
            let (decoded, rest) = decode_data(&data).unwrap();
            assert_eq!(decoded, addresses);
            assert_eq!(rest, *state);
        }
    }

    #[test]
    fn truncated_data_is_an_error_not_a_panic() {
        let data = encode_data(&BTreeMap::from([(3, "http://x:9".to_string())]), b"abc");
        for len in 0..13 {
            assert!(decode_data(&data[..len]).is_err(), "length {len}");
        }
    }

    #[test]
    fn file_round_trips_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_file(dir.path()).unwrap().is_none());
        for index in [5, 9] {
            let mut snap = Snapshot::default();
            snap.mut_metadata().index = index;
            snap.mut_metadata().term = 2;
            snap.mut_metadata().mut_conf_state().voters = vec![1, 2];
            snap.data = encode_data(&BTreeMap::new(), b"s").into();
            write_file(dir.path(), &snap).unwrap();
            assert_eq!(read_file(dir.path()).unwrap().unwrap(), snap);
        }
    }
}
