//! The history's files in its directory: `series.log` (each series' id, kind and name, appended
//! as they are registered), one file per closed block (`t<tier>-<start>.block`, written to a
//! temporary name, synced and renamed), and a journal per tier (`t<tier>.journal`: what the open
//! block gained, appended every 10 seconds, emptied when the block is written).
//!
//! `series.log` and the journals are sequences of records — length, CRC-32, payload. A record
//! that fails its checksum or is cut short ends the file: what precedes it is kept, and the
//! whole file is first copied aside as `*.damaged` so nothing is lost for a person to look at.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::Error;
use crate::block::{self, Entry, PREFIX};

/// Points read back from a journal: block start, point, and (series, codes).
pub(crate) type Chunk = (i64, u32, Vec<(u32, [u32; 3])>);

#[derive(Debug)]
pub(crate) struct Disk {
    dir: PathBuf,
    series: File,
    journals: [File; 3],
}

/// What the directory held.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    pub(crate) series: Vec<(u32, u8, String)>,
    pub(crate) blocks: Vec<(u8, i64, PathBuf, Vec<Entry>)>,
    pub(crate) journals: [Vec<Chunk>; 3],
    pub(crate) set_aside: Vec<String>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

fn append(path: &Path) -> Result<File, Error> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)
        .map_err(io(path))
}

/// `path` renamed to `<path>.damaged`; the message saying so.
fn aside(path: &Path, why: &str) -> String {
    let to = PathBuf::from(format!("{}.damaged", path.display()));
    match std::fs::rename(path, &to) {
        Ok(()) => format!("{}: {why}; set aside as {}", path.display(), to.display()),
        Err(e) => format!(
            "{}: {why}; could not be set aside ({e}), and is not read",
            path.display()
        ),
    }
}

/// The records of a file of records, and whether it ended with a damaged one.
fn records(bytes: &[u8]) -> (Vec<&[u8]>, usize, bool) {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let Some(head) = bytes.get(at..at + 8) else {
            return (out, at, true);
        };
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let Some(payload) = bytes.get(at + 8..at + 8 + len) else {
            return (out, at, true);
        };
        if crc32fast::hash(payload) != crc {
            return (out, at, true);
        }
        out.push(payload);
        at += 8 + len;
    }
    (out, at, false)
}

fn record(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Reads a file of records; a damaged tail is cut off after the file is copied aside.
fn read_records(path: &Path, set_aside: &mut Vec<String>) -> Result<Vec<Vec<u8>>, Error> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(path)(e)),
    };
    let (good, end, damaged) = records(&bytes);
    let good: Vec<Vec<u8>> = good.into_iter().map(<[u8]>::to_vec).collect();
    if damaged {
        let copy = PathBuf::from(format!("{}.damaged", path.display()));
        std::fs::write(&copy, &bytes).map_err(io(&copy))?;
        std::fs::write(path, &bytes[..end]).map_err(io(path))?;
        set_aside.push(format!(
            "{}: a damaged record at byte {end} of {}; the {} records before it are kept, \
             the whole file copied to {}",
            path.display(),
            bytes.len(),
            good.len(),
            copy.display()
        ));
    }
    Ok(good)
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn code_at(b: &[u8], at: usize) -> Option<u32> {
    let c = b.get(at..at + 3)?;
    Some(u32::from(c[0]) | u32::from(c[1]) << 8 | u32::from(c[2]) << 16)
}

/// A journal record's points; `None` if it does not parse.
fn chunk(payload: &[u8], streams: usize) -> Option<Vec<Chunk>> {
    let mut out = Vec::new();
    let points = u32_at(payload, 0)?;
    let mut at = 4;
    for _ in 0..points {
        let start = i64::from_le_bytes(payload.get(at..at + 8)?.try_into().ok()?);
        let index = u32_at(payload, at + 8)?;
        let count = u32_at(payload, at + 12)? as usize;
        at += 16;
        let mut values = Vec::with_capacity(count.min(1 << 16));
        for _ in 0..count {
            let id = u32_at(payload, at)?;
            at += 4;
            let mut codes = [0; 3];
            for (s, code) in codes.iter_mut().enumerate() {
                *code = code_at(payload, at + 3 * s.min(streams - 1))?;
            }
            at += 3 * streams;
            values.push((id, codes));
        }
        out.push((start, index, values));
    }
    Some(out)
}

impl Disk {
    pub(crate) fn open(dir: &Path) -> Result<(Disk, Loaded), Error> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut loaded = Loaded::default();
        let series_path = dir.join("series.log");
        for payload in read_records(&series_path, &mut loaded.set_aside)? {
            if let (Some(id), Some(&kind), Ok(name)) = (
                u32_at(&payload, 0),
                payload.get(4),
                std::str::from_utf8(payload.get(5..).unwrap_or_default()),
            ) {
                loaded.series.push((id, kind, name.to_owned()));
            }
        }
        let mut journals = Vec::new();
        for tier in 0..3 {
            let path = dir.join(format!("t{tier}.journal"));
            let streams = if tier == 0 { 1 } else { 3 };
            for payload in read_records(&path, &mut loaded.set_aside)? {
                match chunk(&payload, streams) {
                    Some(points) => loaded.journals[tier].extend(points),
                    None => loaded.set_aside.push(format!(
                        "{}: a record that does not parse, skipped",
                        path.display()
                    )),
                }
            }
            journals.push(append(&path)?);
        }
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let path = entry.map_err(io(dir))?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if name.ends_with(".tmp") {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let Some(block) = name.strip_suffix(".block") else {
                continue;
            };
            match Disk::load_block(&path) {
                Ok(dir) if format!("t{}-{}", dir.tier, dir.start) == block => {
                    loaded.blocks.push((dir.tier, dir.start, path, dir.entries));
                }
                Ok(_) => loaded
                    .set_aside
                    .push(aside(&path, "its header names another block")),
                Err(why) => loaded.set_aside.push(aside(&path, &why)),
            }
        }
        let [a, b, c] = <[File; 3]>::try_from(journals)
            .map_err(|_| io(dir)(std::io::Error::other("three journals")))?;
        Ok((
            Disk {
                dir: dir.to_owned(),
                series: append(&series_path)?,
                journals: [a, b, c],
            },
            loaded,
        ))
    }

    fn load_block(path: &Path) -> Result<block::Directory, String> {
        let mut file = File::open(path).map_err(|e| e.to_string())?;
        let len = file.metadata().map_err(|e| e.to_string())?.len();
        let mut prefix = [0; PREFIX];
        file.read_exact(&mut prefix)
            .map_err(|_| "shorter than a block's header".to_owned())?;
        let (crc, head_len) = block::head_len(&prefix).map_err(|e| e.to_string())?;
        if head_len as u64 > len {
            return Err("its directory runs past the end of the file".to_owned());
        }
        let mut head = vec![0; head_len];
        file.read_exact(&mut head)
            .map_err(|_| "its directory runs past the end of the file".to_owned())?;
        block::directory(crc, &head, len).map_err(|e| e.to_string())
    }

    fn block_path(&self, tier: usize, start: i64) -> PathBuf {
        self.dir.join(format!("t{tier}-{start}.block"))
    }

    pub(crate) fn add_series(&mut self, id: u32, kind: u8, name: &str) -> Result<(), Error> {
        let mut payload = id.to_le_bytes().to_vec();
        payload.push(kind);
        payload.extend_from_slice(name.as_bytes());
        let path = self.dir.join("series.log");
        self.series.write_all(&record(&payload)).map_err(io(&path))
    }

    /// Writes a closed block (to a temporary name, synced, renamed); its path and directory.
    pub(crate) fn write_block(
        &self,
        tier: usize,
        start: i64,
        bytes: &[u8],
    ) -> Result<(PathBuf, Vec<Entry>), Error> {
        let path = self.block_path(tier, start);
        let tmp = path.with_extension("tmp");
        let mut file = File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(bytes).map_err(io(&tmp))?;
        file.sync_data().map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        let (crc, len) = block::head_len(bytes).map_err(|e| io(&path)(std::io::Error::other(e)))?;
        let head = bytes.get(PREFIX..PREFIX + len).unwrap_or_default();
        let dir = block::directory(crc, head, bytes.len() as u64)
            .map_err(|e| io(&path)(std::io::Error::other(e)))?;
        Ok((path, dir.entries))
    }

    /// A series' data in a block on disk.
    pub(crate) fn read_series(&self, path: &Path, entry: &Entry) -> Result<Vec<u8>, Error> {
        let file = File::open(path).map_err(io(path))?;
        let size: u64 = entry.lens.iter().map(|&l| u64::from(l)).sum();
        let mut data = vec![0; size as usize];
        file.read_exact_at(&mut data, entry.offset)
            .map_err(io(path))?;
        Ok(data)
    }

    pub(crate) fn remove_block(&self, tier: usize, start: i64) {
        let _ = std::fs::remove_file(self.block_path(tier, start));
    }

    pub(crate) fn set_aside(&self, tier: usize, start: i64) {
        aside(&self.block_path(tier, start), "damaged");
    }

    /// Appends a tier's pending points to its journal.
    pub(crate) fn append_journal(
        &mut self,
        tier: usize,
        streams: usize,
        points: &[Chunk],
    ) -> Result<(), Error> {
        let mut payload = (points.len() as u32).to_le_bytes().to_vec();
        for (start, index, values) in points {
            payload.extend_from_slice(&start.to_le_bytes());
            payload.extend_from_slice(&index.to_le_bytes());
            payload.extend_from_slice(&(values.len() as u32).to_le_bytes());
            for (id, codes) in values {
                payload.extend_from_slice(&id.to_le_bytes());
                for code in &codes[..streams] {
                    payload.extend_from_slice(&code.to_le_bytes()[..3]);
                }
            }
        }
        let path = self.dir.join(format!("t{tier}.journal"));
        self.journals[tier]
            .write_all(&record(&payload))
            .map_err(io(&path))
    }

    pub(crate) fn empty_journal(&mut self, tier: usize) -> Result<(), Error> {
        let path = self.dir.join(format!("t{tier}.journal"));
        self.journals[tier].set_len(0).map_err(io(&path))
    }

    /// Syncs the journals and the series to disk.
    pub(crate) fn sync(&mut self) -> Result<(), Error> {
        for (tier, file) in self.journals.iter().enumerate() {
            let path = self.dir.join(format!("t{tier}.journal"));
            file.sync_data().map_err(io(&path))?;
        }
        let path = self.dir.join("series.log");
        self.series.sync_data().map_err(io(&path))
    }
}
