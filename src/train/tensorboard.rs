//! TensorBoard event files: scalar summaries in TFRecord framing, written without TensorFlow.
//!
//! A file is a sequence of records `len: u64 LE | masked_crc32c(len) | data | masked_crc32c(data)`
//! whose data are serialised `tensorflow.Event` protos: the first carries
//! `file_version = "brain.Event:2"`, the others a `Summary` with one `simple_value` per tag.
//! `tests/fixtures/make_tensorboard.py` writes the same events with TensorBoard's own writer; the
//! tests compare the bytes and read our file back with TensorBoard's `EventAccumulator`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::io::crc32c;
use crate::{Error, Result};

/// Writes scalars to one `events.out.tfevents.*` file.
pub struct EventWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl EventWriter {
    /// Creates `dir/events.out.tfevents.<wall_time>.<host>.<pid>.<n>` (TensorBoard's naming, which
    /// it needs to find the file; `n` counts this process's writers) and writes the file-version
    /// event.
    pub fn create(dir: &Path, wall_time: f64) -> Result<Self> {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
        // PyTorch's naming ends in a per-process writer count, so that two writers opened in the
        // same second (a run resumed in the same process) do not share a file.
        static WRITERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = WRITERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!(
            "events.out.tfevents.{}.{}.{}.{n}",
            wall_time as u64,
            host.replace(['/', '\\'], "_"),
            std::process::id()
        );
        let path = dir.join(name);
        let file = File::create(&path).map_err(|e| Error::Save {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let mut writer = Self {
            path,
            out: BufWriter::new(file),
        };
        writer.write_record(&file_version_event(wall_time))?;
        Ok(writer)
    }

    /// Like [`create`](Self::create), for a run resumed at optimizer step `purge_step - 1`: after
    /// the file-version event it writes PyTorch's `SummaryWriter(purge_step=...)` markers (the
    /// file version again, then `SessionLog.START`, both at `purge_step`), so that TensorBoard
    /// hides every event of the earlier files at a step >= `purge_step`: the points a killed run
    /// wrote past its last checkpoint.
    pub fn create_resumed(dir: &Path, wall_time: f64, purge_step: u64) -> Result<Self> {
        let mut writer = Self::create(dir, wall_time)?;
        writer.write_record(&file_version_event_at(wall_time, purge_step as i64))?;
        writer.write_record(&session_start_event(wall_time, purge_step as i64))?;
        Ok(writer)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event holding the scalar `value` under `tag` at `step`.
    pub fn scalar(&mut self, tag: &str, value: f64, step: u64, wall_time: f64) -> Result<()> {
        self.write_record(&scalar_event(tag, value as f32, step as i64, wall_time))
    }

    /// Flushes buffered events to the file.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| Error::Save {
            path: self.path.clone(),
            message: e.to_string(),
        })
    }

    fn write_record(&mut self, data: &[u8]) -> Result<()> {
        let bytes = frame_record(data);
        self.out.write_all(&bytes).map_err(|e| Error::Save {
            path: self.path.clone(),
            message: e.to_string(),
        })
    }
}

/// One TFRecord: length, its masked CRC, the data, the data's masked CRC.
pub fn frame_record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
    out
}

/// Splits a TFRecord file into its records' data, checking both CRCs of each.
pub fn read_records(bytes: &[u8]) -> std::result::Result<Vec<Vec<u8>>, String> {
    let mut records = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let head = bytes
            .get(at..at + 12)
            .ok_or(format!("truncated record header at byte {at}"))?;
        let len_bytes = &head[..8];
        let crc = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
        if crc != masked_crc32c(len_bytes) {
            return Err(format!("bad length CRC at byte {at}"));
        }
        let len = u64::from_le_bytes(len_bytes.try_into().expect("8 bytes")) as usize;
        let data = bytes
            .get(at + 12..at + 12 + len)
            .ok_or(format!("truncated record data at byte {at}"))?;
        let crc = bytes
            .get(at + 12 + len..at + 16 + len)
            .ok_or(format!("truncated record CRC at byte {at}"))?;
        if u32::from_le_bytes(crc.try_into().expect("4 bytes")) != masked_crc32c(data) {
            return Err(format!("bad data CRC in the record at byte {at}"));
        }
        records.push(data.to_vec());
        at += 16 + len;
    }
    Ok(records)
}

/// TFRecord's masking of the CRC (so that a CRC of CRCs is not trivially correlated).
fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = crc32c(data);
    (crc.rotate_right(15)).wrapping_add(0xa282_ead8)
}

// --- The few protobuf encodings an Event needs. ---

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(field: u32, wire: u32, out: &mut Vec<u8>) {
    varint(((field << 3) | wire) as u64, out);
}

fn bytes_field(field: u32, data: &[u8], out: &mut Vec<u8>) {
    key(field, 2, out);
    varint(data.len() as u64, out);
    out.extend_from_slice(data);
}

/// `Event { wall_time = 1 (double); step = 2 (int64); file_version = 3 | summary = 5 }`.
fn event_header(wall_time: f64, step: i64, out: &mut Vec<u8>) {
    key(1, 1, out);
    out.extend_from_slice(&wall_time.to_le_bytes());
    if step != 0 {
        key(2, 0, out);
        varint(step as u64, out);
    }
}

fn file_version_event(wall_time: f64) -> Vec<u8> {
    file_version_event_at(wall_time, 0)
}

fn file_version_event_at(wall_time: f64, step: i64) -> Vec<u8> {
    let mut out = Vec::new();
    event_header(wall_time, step, &mut out);
    bytes_field(3, b"brain.Event:2", &mut out);
    out
}

/// `Event { session_log = 7: SessionLog { status = 1: START (1) } }`.
fn session_start_event(wall_time: f64, step: i64) -> Vec<u8> {
    let mut out = Vec::new();
    event_header(wall_time, step, &mut out);
    bytes_field(7, &[0x08, 0x01], &mut out);
    out
}

/// `Summary { value = 1: Value { tag = 1; simple_value = 2 (float) } }`.
fn scalar_event(tag: &str, value: f32, step: i64, wall_time: f64) -> Vec<u8> {
    let mut v = Vec::new();
    bytes_field(1, tag.as_bytes(), &mut v);
    key(2, 5, &mut v);
    v.extend_from_slice(&value.to_le_bytes());
    let mut summary = Vec::new();
    bytes_field(1, &v, &mut summary);
    let mut out = Vec::new();
    event_header(wall_time, step, &mut out);
    bytes_field(5, &summary, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_corruption_is_caught() {
        let mut file = frame_record(b"abc");
        file.extend(frame_record(&[7u8; 300]));
        let records = read_records(&file).unwrap();
        assert_eq!(records, vec![b"abc".to_vec(), vec![7u8; 300]]);
        file[14] ^= 1;
        assert!(read_records(&file).unwrap_err().contains("bad data CRC"));
        assert!(read_records(&file[..file.len() - 2]).is_err());
    }
}
