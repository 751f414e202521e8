//! Sources from files: follows a file of JSON lines as the API server's audit log backend and
//! Falco's `file_output` write it, and feeds what is appended through the pipeline.
//!
//! A [`Tail`] thread reads complete lines from its read position, a chunk at a time, reads
//! them into events ([`Pipeline::read`], so bad lines are counted like any parse error, and
//! logged with the file and line number), submits them acknowledged on commit, and once they
//! are committed saves the position (device, inode, offset, line) through [`Positions`] — the
//! daemon keeps it in the store. A restart carries on from the saved position, so lines are
//! neither lost nor read twice; only a kill between a commit and the save of its position
//! reads that last chunk again.
//!
//! Rotation by rename (the path names another inode) is followed once the old file is read to
//! its end; rotation by truncation (the file is shorter than the position) starts the file
//! again from its beginning. A missing file is waited for. The file is polled every
//! `poll` while nothing new is in it.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use zen_model::{Context, Format, Syntax, Timestamp};

use zen_sink::{Positions, TailPosition};

use crate::{Ack, AckOutcome, Pipeline, Submission, SubmitError};

/// What a tail follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailConfig {
    pub format: Format,
    pub path: PathBuf,
    /// How long to wait when the file has nothing new.
    pub poll: Duration,
}

impl std::str::FromStr for TailConfig {
    type Err = String;

    /// `FORMAT:PATH`, as `--tail` takes it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (format, path) = s.split_once(':').ok_or_else(|| {
            format!("expected FORMAT:PATH (audit:/var/log/audit.log), found {s:?}")
        })?;
        let format = format.parse::<Format>().map_err(|e| e.to_string())?;
        if path.is_empty() {
            return Err(format!("expected a file after `{format}:`"));
        }
        Ok(TailConfig {
            format,
            path: PathBuf::from(path),
            poll: Duration::from_millis(250),
        })
    }
}

/// Most bytes read into events at a time.
const CHUNK: usize = 1 << 20;

/// A running tail; stops (after the chunk in hand) when dropped.
#[derive(Debug)]
pub struct Tail {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Tail {
    /// Starts following `config.path` on a thread of its own.
    pub fn start(
        config: TailConfig,
        pipeline: Arc<Pipeline>,
        positions: Arc<dyn Positions>,
    ) -> io::Result<Tail> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let name = format!("zen-tail-{}", config.format);
        let thread = std::thread::Builder::new().name(name).spawn(move || {
            let mut follower = Follower {
                position: positions.load(&config.path).unwrap_or_default(),
                config,
                pipeline,
                positions,
                stop: stopping,
                file: None,
            };
            follower.run();
        })?;
        Ok(Tail {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Follower {
    config: TailConfig,
    pipeline: Arc<Pipeline>,
    positions: Arc<dyn Positions>,
    stop: Arc<AtomicBool>,
    position: TailPosition,
    file: Option<File>,
}

impl Follower {
    fn run(&mut self) {
        let mut buffer = Vec::new();
        while !self.stop.load(Ordering::Acquire) {
            match self.step(&mut buffer) {
                Ok(true) => {}
                Ok(false) => std::thread::sleep(self.config.poll),
                Err(e) => {
                    tracing::warn!(file = %self.config.path.display(), error = %e, "tail: cannot read");
                    metrics::counter!("zen_watcher_errors_total", "component" => "ingest", "category" => "connection").increment(1);
                    self.file = None;
                    std::thread::sleep(self.config.poll.max(Duration::from_secs(1)));
                }
            }
        }
    }

    /// Reads and submits what is new; says whether there was anything.
    fn step(&mut self, buffer: &mut Vec<u8>) -> io::Result<bool> {
        if self.file.is_none() && !self.open()? {
            return Ok(false);
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(false);
        };
        let size = file.metadata()?.len();
        if size < self.position.offset {
            tracing::info!(file = %self.config.path.display(), "tail: the file was truncated; reading it from the start");
            self.position.offset = 0;
            self.position.line = 0;
        }
        file.seek(SeekFrom::Start(self.position.offset))?;
        buffer.clear();
        file.take(CHUNK as u64).read_to_end(buffer)?;
        // Whole lines only: a line being written is read once it ends.
        let whole = match buffer.iter().rposition(|&b| b == b'\n') {
            Some(end) => end + 1,
            None if buffer.len() == CHUNK => buffer.len(),
            None => {
                // Nothing new here: has the path moved on to another file?
                if self.rotated()? {
                    self.file = None;
                    self.position = TailPosition::default();
                    return Ok(true);
                }
                return Ok(false);
            }
        };
        let chunk = &buffer[..whole];
        let lines = chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        self.submit(chunk)?;
        self.position.offset += whole as u64;
        self.position.line += lines;
        self.positions.save(&self.config.path, self.position);
        Ok(true)
    }

    /// Opens the file at the saved position if it is the same file, else from its start.
    fn open(&mut self) -> io::Result<bool> {
        let file = match File::open(&self.config.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        if (meta.dev(), meta.ino()) != (self.position.device, self.position.inode) {
            self.position = TailPosition {
                device: meta.dev(),
                inode: meta.ino(),
                offset: 0,
                line: 0,
            };
        }
        self.file = Some(file);
        Ok(true)
    }

    /// Whether the path now names another file than the one being read.
    fn rotated(&self) -> io::Result<bool> {
        match std::fs::metadata(&self.config.path) {
            Ok(meta) => Ok((meta.dev(), meta.ino()) != (self.position.device, self.position.inode)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Reads `chunk` into events and submits them, waiting until they are committed (or the
    /// pipeline stops). Bad lines are logged with the file and their line number.
    fn submit(&self, chunk: &[u8]) -> io::Result<()> {
        let format = self.config.format;
        let ctx = Context::received_at(Timestamp::now());
        let read = match self.pipeline.read(format, Syntax::Json, chunk, &ctx) {
            Ok(read) => read,
            Err(e) => {
                self.log_bad(&e.at, &e.problem);
                return Ok(());
            }
        };
        for e in &read.errors {
            self.log_bad(&e.at, &e.problem);
        }
        if read.events.is_empty() {
            return Ok(());
        }
        let (done, committed) = std::sync::mpsc::channel::<AckOutcome>();
        let mut submission = Submission::now(read.events);
        submission.ack = Some(Ack::new(submission.events.len(), move |outcome| {
            let _ = done.send(outcome);
        }));
        loop {
            match self.pipeline.try_submit(submission) {
                Ok(()) => break,
                Err(SubmitError::Full(back)) => {
                    submission = back;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(SubmitError::Closed(_)) => {
                    return Err(io::Error::other("the pipeline is stopping"));
                }
            }
        }
        match committed.recv() {
            Ok(_) => Ok(()),
            Err(_) => Err(io::Error::other("the pipeline stopped before a commit")),
        }
    }

    /// Logs a line that could not be read, at its line in the file.
    fn log_bad(&self, at: &str, problem: &str) {
        let first = self.position.line + 1;
        // Several lines are numbered `line N` within the chunk; a single one is the chunk.
        let line = at
            .strip_prefix("line ")
            .and_then(|rest| rest.split([':', ',']).next())
            .and_then(|n| n.trim().parse::<u64>().ok())
            .map_or(first, |n| first + n - 1);
        tracing::warn!(
            file = %self.config.path.display(),
            line,
            "tail: a line could not be read: {problem}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tail_is_format_colon_path() {
        let t: TailConfig = "audit:/var/log/kubernetes/audit.log"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (t.format, t.path.to_str()),
            (Format::Audit, Some("/var/log/kubernetes/audit.log"))
        );
        let e = "/var/log/audit.log".parse::<TailConfig>().unwrap_err();
        assert!(e.starts_with("expected FORMAT:PATH"), "{e}");
        let e = "sysdig:/x".parse::<TailConfig>().unwrap_err();
        assert!(e.contains("sysdig"), "{e}");
        assert!("falco:".parse::<TailConfig>().is_err());
    }
}
