//! Observations as JSON lines, to a file or to standard output: a sink beside (or instead of)
//! SQLite, for shippers that tail files and for pipes.
//!
//! Each write appends one line per kept event (the Observation of its first sighting), then
//! flushes and — for a file — `fsync`s it: a batch is on disk before the sink says so. A file
//! is rotated by size: past `max_bytes` it is renamed `PATH.1` (the older ones shifting to
//! `PATH.2` … `PATH.<keep>`, the last dropped) and a new one is started. Duplicate counts are
//! not written: the lines are first sightings (the store keeps the counts). A failed write cuts
//! the file back to its last whole batch and is retried by the pipeline.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use zen_dedup::DuplicateUpdate;
use zen_model::Observation;
use zen_sink::{Kept, Sink, SinkError};

/// Where JSON lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonlTarget {
    Stdout,
    /// A file, rotated past `max_bytes`, keeping `keep` rotated files.
    File {
        path: PathBuf,
        max_bytes: u64,
        keep: usize,
    },
}

/// The JSON-lines sink; see the module docs.
#[derive(Debug)]
pub struct JsonlSink {
    target: JsonlTarget,
    file: Option<BufWriter<File>>,
    /// Bytes in the current file.
    size: u64,
    line: Vec<u8>,
}

fn io_error(what: &str, path: &Path, e: &io::Error) -> SinkError {
    SinkError {
        message: format!("jsonl: {what} {}: {e}", path.display()),
        retryable: true,
    }
}

impl JsonlSink {
    /// Opens (appending to) the target's file, if it is one.
    pub fn open(target: JsonlTarget) -> io::Result<JsonlSink> {
        let mut sink = JsonlSink {
            target,
            file: None,
            size: 0,
            line: Vec::with_capacity(1024),
        };
        if let JsonlTarget::File { path, .. } = &sink.target {
            let path = path.clone();
            sink.reopen(&path)?;
        }
        Ok(sink)
    }

    fn reopen(&mut self, path: &Path) -> io::Result<()> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        self.size = file.metadata()?.len();
        self.file = Some(BufWriter::new(file));
        Ok(())
    }

    /// Renames the file to `.1` (shifting older ones) and starts a new one.
    fn rotate(&mut self, path: &Path, keep: usize) -> io::Result<()> {
        self.file = None;
        let numbered = |n: usize| PathBuf::from(format!("{}.{n}", path.display()));
        if keep == 0 {
            std::fs::remove_file(path)?;
        } else {
            for n in (1..keep).rev() {
                match std::fs::rename(numbered(n), numbered(n + 1)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            std::fs::rename(path, numbered(1))?;
        }
        self.reopen(path)
    }
}

impl Sink for JsonlSink {
    fn name(&self) -> &str {
        "jsonl"
    }

    fn write(&mut self, _source: &str, events: &[Kept]) -> Result<(), SinkError> {
        self.line.clear();
        for k in events {
            // An Observation always serialises: its details are JSON already.
            serde_json::to_writer(&mut self.line, &Observation::new(k.event.clone())).map_err(
                |e| SinkError {
                    message: format!("jsonl: encoding an Observation: {e}"),
                    retryable: false,
                },
            )?;
            self.line.push(b'\n');
        }
        match self.target.clone() {
            JsonlTarget::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(&self.line)
                    .and_then(|()| out.flush())
                    .map_err(|e| io_error("writing", Path::new("standard output"), &e))
            }
            JsonlTarget::File {
                path,
                max_bytes,
                keep,
            } => {
                if self.size > 0 && self.size + self.line.len() as u64 > max_bytes {
                    self.rotate(&path, keep)
                        .map_err(|e| io_error("rotating", &path, &e))?;
                }
                if self.file.is_none() {
                    self.reopen(&path)
                        .map_err(|e| io_error("opening", &path, &e))?;
                }
                let Some(file) = self.file.as_mut() else {
                    return Err(io_error("opening", &path, &io::ErrorKind::NotFound.into()));
                };
                let written = file
                    .write_all(&self.line)
                    .and_then(|()| file.flush())
                    .and_then(|()| file.get_ref().sync_data());
                if let Err(e) = written {
                    // Cut the file back to its last whole batch (no half line is left for a
                    // reader), drop what is buffered, and start afresh next time.
                    if let Some(writer) = self.file.take() {
                        let (file, _unwritten) = writer.into_parts();
                        let _ = file.set_len(self.size);
                    }
                    return Err(io_error("writing", &path, &e));
                }
                self.size += self.line.len() as u64;
                Ok(())
            }
        }
    }

    fn apply_duplicates(&mut self, _: &[DuplicateUpdate]) -> Result<(), SinkError> {
        Ok(())
    }
}
