//! A block: one tier's points of every series over a fixed stretch of time, each series a
//! column of one stream (the 1 s tier: the value) or three (the rollups: average, minimum and
//! maximum), compressed; and its form on disk.
//!
//! On disk a block is `ZHB1`, a CRC-32 of the header and directory, the header (tier, streams,
//! start, series), the directory (per series: id, first point, points, the CRC-32 of its data and
//! each stream's length) and the data. The header is checked when the block is loaded, each
//! series' data when it is read, so a damaged byte is found before it is believed.

use crate::codec::{self, Encoder, MISSING};

const MAGIC: &[u8; 4] = b"ZHB1";

/// One series' points in a block: from point `first`, `len` of them, gaps as [`MISSING`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Column {
    pub(crate) first: u32,
    pub(crate) streams: Vec<Encoder>,
}

impl Column {
    pub(crate) fn new(first: u32, streams: usize) -> Column {
        Column {
            first,
            streams: vec![Encoder::default(); streams],
        }
    }

    pub(crate) fn len(&self) -> u32 {
        self.streams.first().map_or(0, Encoder::len)
    }

    /// Puts `codes` (one per stream) at point `index`, gaps before it filled; a point at or
    /// before the last one written is ignored.
    pub(crate) fn put(&mut self, index: u32, codes: &[u32]) {
        let next = self.first + self.len();
        if index < next {
            return;
        }
        for stream in &mut self.streams {
            for _ in next..index {
                stream.push(MISSING);
            }
        }
        for (stream, &code) in self.streams.iter_mut().zip(codes) {
            stream.push(code);
        }
    }

    /// Calls `each(point, codes)` for every point held, gaps included.
    pub(crate) fn points(
        first: u32,
        len: u32,
        streams: &[&[u8]],
        mut each: impl FnMut(u32, &[u32]),
    ) -> Result<(), codec::Truncated> {
        let mut codes = vec![[MISSING; 3]; len as usize];
        for (s, bytes) in streams.iter().enumerate().take(3) {
            let mut i = 0;
            codec::decode_column(bytes, len, |c| {
                codes[i][s] = c;
                i += 1;
            })?;
        }
        for (i, c) in codes.iter().enumerate() {
            each(first + i as u32, &c[..streams.len().min(3)]);
        }
        Ok(())
    }

    pub(crate) fn bytes_held(&self) -> usize {
        self.streams.iter().map(Encoder::capacity).sum()
    }
}

/// Where a series' data sits in a block on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) series: u32,
    pub(crate) first: u32,
    pub(crate) len: u32,
    pub(crate) crc: u32,
    /// From the start of the file.
    pub(crate) offset: u64,
    pub(crate) lens: Vec<u32>,
}

/// A block's header and directory, as read from disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Directory {
    pub(crate) tier: u8,
    pub(crate) start: i64,
    pub(crate) entries: Vec<Entry>,
}

/// Why a block on disk cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Damage {
    #[error("not a history block (no ZHB1 at its start)")]
    Magic,
    #[error("it ends inside its {0}")]
    Short(&'static str),
    #[error("its {0} fails its checksum")]
    Checksum(&'static str),
    #[error("its directory is inconsistent: {0}")]
    Directory(&'static str),
}

/// Serialises a block of `tier` starting at `start`: the columns by series id.
pub(crate) fn to_bytes(tier: u8, start: i64, columns: &[(u32, &Column)]) -> Vec<u8> {
    let streams = columns.first().map_or(1, |(_, c)| c.streams.len()) as u8;
    let mut head = Vec::new();
    head.push(tier);
    head.push(streams);
    head.extend_from_slice(&start.to_le_bytes());
    head.extend_from_slice(&(columns.len() as u32).to_le_bytes());
    let mut data = Vec::new();
    for (id, column) in columns {
        let mut crc = crc32fast::Hasher::new();
        for s in &column.streams {
            crc.update(s.bytes());
        }
        head.extend_from_slice(&id.to_le_bytes());
        head.extend_from_slice(&column.first.to_le_bytes());
        head.extend_from_slice(&column.len().to_le_bytes());
        head.extend_from_slice(&crc.finalize().to_le_bytes());
        for s in &column.streams {
            head.extend_from_slice(&(s.bytes().len() as u32).to_le_bytes());
            data.extend_from_slice(s.bytes());
        }
    }
    let mut out = Vec::with_capacity(12 + head.len() + data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&crc32fast::hash(&head).to_le_bytes());
    out.extend_from_slice(&(head.len() as u32).to_le_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(&data);
    out
}

/// Reads little-endian fields from a byte slice.
struct Fields<'a> {
    bytes: &'a [u8],
    at: usize,
    what: &'static str,
}

impl Fields<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], Damage> {
        let end = self.at + N;
        let field = self
            .bytes
            .get(self.at..end)
            .and_then(|b| <[u8; N]>::try_from(b).ok())
            .ok_or(Damage::Short(self.what))?;
        self.at = end;
        Ok(field)
    }

    fn u32(&mut self) -> Result<u32, Damage> {
        self.take::<4>().map(u32::from_le_bytes)
    }
}

/// The length of the prefix to read to get a block's directory: magic, checksum and length.
pub(crate) const PREFIX: usize = 12;

/// The directory's length, from a block's first [`PREFIX`] bytes; checks the magic.
pub(crate) fn head_len(prefix: &[u8]) -> Result<(u32, usize), Damage> {
    if prefix.get(..4) != Some(MAGIC) {
        return Err(Damage::Magic);
    }
    let mut f = Fields {
        bytes: prefix,
        at: 4,
        what: "prefix",
    };
    let crc = f.u32()?;
    let len = f.u32()? as usize;
    Ok((crc, len))
}

/// Parses a block's header and directory (`head`, after the prefix), checking its checksum
/// and that the data it points at lies within `file_len`.
pub(crate) fn directory(crc: u32, head: &[u8], file_len: u64) -> Result<Directory, Damage> {
    if crc32fast::hash(head) != crc {
        return Err(Damage::Checksum("directory"));
    }
    let mut f = Fields {
        bytes: head,
        at: 0,
        what: "directory",
    };
    let [tier, streams] = f.take::<2>()?;
    let Some(spec) = crate::TIERS.get(usize::from(tier)) else {
        return Err(Damage::Directory("tier"));
    };
    if streams != if tier == 0 { 1 } else { 3 } {
        return Err(Damage::Directory("streams"));
    }
    let points = (spec.block / spec.step) as u32;
    let start = i64::from_le_bytes(f.take::<8>()?);
    let count = f.u32()?;
    let mut offset = (PREFIX + head.len()) as u64;
    let mut entries = Vec::with_capacity(count.min(1 << 16) as usize);
    for _ in 0..count {
        let series = f.u32()?;
        let first = f.u32()?;
        let len = f.u32()?;
        if series as usize >= crate::MAX_SERIES {
            return Err(Damage::Directory(
                "a series id past the most a history holds",
            ));
        }
        if first.checked_add(len).is_none_or(|end| end > points) {
            return Err(Damage::Directory("points past the end of the block"));
        }
        let crc = f.u32()?;
        let lens = (0..streams)
            .map(|_| f.u32())
            .collect::<Result<Vec<_>, _>>()?;
        let size: u64 = lens.iter().map(|&l| u64::from(l)).sum();
        entries.push(Entry {
            series,
            first,
            len,
            crc,
            offset,
            lens,
        });
        offset += size;
    }
    if offset > file_len {
        return Err(Damage::Directory("data past the end of the file"));
    }
    Ok(Directory {
        tier,
        start,
        entries,
    })
}

/// Checks a series' data (its streams, concatenated) against its entry; the streams.
pub(crate) fn streams<'a>(entry: &Entry, data: &'a [u8]) -> Result<Vec<&'a [u8]>, Damage> {
    if crc32fast::hash(data) != entry.crc {
        return Err(Damage::Checksum("series data"));
    }
    let mut out = Vec::with_capacity(entry.lens.len());
    let mut at = 0;
    for &len in &entry.lens {
        let end = at + len as usize;
        out.push(data.get(at..end).ok_or(Damage::Short("series data"))?);
        at = end;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encode;

    fn column(first: u32, values: &[f64]) -> Column {
        let mut c = Column::new(first, 3);
        for (i, &v) in values.iter().enumerate() {
            c.put(
                first + i as u32,
                &[encode(v), encode(v - 1.0), encode(v + 1.0)],
            );
        }
        c
    }

    #[test]
    fn a_block_reads_back_from_its_bytes() {
        let a = column(0, &[1.0, 2.0, 3.0]);
        let b = column(5, &[10.0, f64::NAN, 12.0]);
        let bytes = to_bytes(2, 7200, &[(1, &a), (7, &b)]);
        let (crc, len) = head_len(&bytes[..PREFIX]).expect("prefix");
        let dir = directory(crc, &bytes[PREFIX..PREFIX + len], bytes.len() as u64).expect("dir");
        assert_eq!((dir.tier, dir.start, dir.entries.len()), (2, 7200, 2));
        let e = &dir.entries[1];
        assert_eq!((e.series, e.first, e.len), (7, 5, 3));
        let size: u32 = e.lens.iter().sum();
        let data = &bytes[e.offset as usize..e.offset as usize + size as usize];
        let streams = streams(e, data).expect("streams");
        let mut seen = Vec::new();
        Column::points(e.first, e.len, &streams, |i, c| {
            seen.push((i, codec::decode(c[2])))
        })
        .expect("points");
        assert_eq!(seen[0], (5, 11.0));
        assert!(seen[1].1.is_nan());
        assert_eq!(seen[2], (7, 13.0));
    }

    #[test]
    fn damage_is_found() {
        let a = column(0, &[1.0, 2.0, 3.0]);
        let mut bytes = to_bytes(1, 0, &[(1, &a)]);
        let (crc, len) = head_len(&bytes[..PREFIX]).expect("prefix");
        // A flipped byte in the directory.
        let mut head = bytes[PREFIX..PREFIX + len].to_vec();
        head[3] ^= 1;
        assert_eq!(
            directory(crc, &head, bytes.len() as u64),
            Err(Damage::Checksum("directory"))
        );
        // A flipped byte in the data.
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        let dir = directory(crc, &bytes[PREFIX..PREFIX + len], bytes.len() as u64).expect("dir");
        let e = &dir.entries[0];
        assert_eq!(
            streams(e, &bytes[e.offset as usize..]),
            Err(Damage::Checksum("series data"))
        );
        // A truncated file.
        assert!(directory(crc, &bytes[PREFIX..PREFIX + len], (PREFIX + len) as u64).is_err());
        assert_eq!(head_len(b"ZHB2........"), Err(Damage::Magic));
    }
}
