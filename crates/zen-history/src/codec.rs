//! Values as 24-bit codes, and columns of them compressed Gorilla-style.
//!
//! A value is kept as the top 24 bits of its IEEE 754 double — sign, exponent and 12 bits of
//! mantissa, rounded to nearest — so its relative error is at most 2⁻¹³ (0.012 %), far below a
//! pixel of any chart, and whole numbers up to 8,192 are exact. A column of codes is written as
//! the first code, then for each next code its XOR with the previous one: a single `0` bit when
//! they are equal, `10` and the changed bits when they fall inside the previous window of
//! changed bits, `11`, the window (5 bits of leading zeros, 5 of length) and the bits otherwise.
//! A steady series costs one bit per value, a noisy one about one to two bytes.

/// A missing value (a gap): the code of a quiet NaN.
pub const MISSING: u32 = 0x7F_F800;
const BITS: u32 = 24;
const MASK: u32 = (1 << BITS) - 1;

/// The code of `value`: NaN and infinities become [`MISSING`].
pub fn encode(value: f64) -> u32 {
    if !value.is_finite() {
        return MISSING;
    }
    let bits = value.to_bits();
    // Round to nearest on the 40 bits dropped; a carry into the exponent is the right rounding.
    let rounded = bits.wrapping_add(1 << 39) >> 40;
    let code = rounded as u32 & MASK;
    // Rounding the largest finite values up would make an infinity: keep them finite.
    if code & 0x7F_F000 == 0x7F_F000 {
        return (bits >> 40) as u32 & MASK;
    }
    code
}

/// The value of `code`; NaN for [`MISSING`].
pub fn decode(code: u32) -> f64 {
    f64::from_bits(u64::from(code & MASK) << 40)
}

/// `value` as it is kept: what reading it back gives.
pub fn kept(value: f64) -> f64 {
    decode(encode(value))
}

/// Appends bits to a byte vector, most significant first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct BitWriter {
    bytes: Vec<u8>,
    /// Bits of the last byte in use (0 = the last byte is full or there is none).
    used: u32,
}

impl BitWriter {
    /// Appends the low `count` bits of `value` (at most 32).
    fn push(&mut self, value: u32, count: u32) {
        let mut bits = u64::from(value) & ((1u64 << count) - 1);
        let mut len = count;
        // First the room left in the last byte: most pushes are a bit or two and end there.
        if self.used > 0
            && let Some(last) = self.bytes.last_mut()
        {
            let room = 8 - self.used;
            if len <= room {
                *last |= (bits << (room - len)) as u8;
                self.used = (self.used + len) % 8;
                return;
            }
            len -= room;
            *last |= (bits >> len) as u8;
            bits &= (1u64 << len) - 1;
        }
        while len >= 8 {
            len -= 8;
            self.bytes.push((bits >> len) as u8);
        }
        if len > 0 {
            self.bytes.push((bits << (8 - len)) as u8);
        }
        self.used = len;
    }
}

/// Reads bits back in the order [`BitWriter`] wrote them.
struct BitReader<'a> {
    bytes: &'a [u8],
    /// The next byte to load.
    next: usize,
    /// Bits loaded and not yet taken, at the low end of `buffer`.
    buffer: u64,
    held: u32,
}

impl BitReader<'_> {
    /// The next `count` bits (at most 32); `None` past the end.
    fn take(&mut self, count: u32) -> Option<u32> {
        while self.held < count {
            let byte = *self.bytes.get(self.next)?;
            self.next += 1;
            self.buffer = (self.buffer << 8) | u64::from(byte);
            self.held += 8;
        }
        self.held -= count;
        let out = (self.buffer >> self.held) & ((1u64 << count) - 1);
        self.buffer &= (1u64 << self.held) - 1;
        Some(out as u32)
    }
}

/// A column being written: codes appended one by one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Encoder {
    bits: BitWriter,
    len: u32,
    previous: u32,
    /// The previous window of changed bits: leading zeros and length.
    window: Option<(u32, u32)>,
}

impl Encoder {
    pub fn push(&mut self, code: u32) {
        let code = code & MASK;
        if self.len == 0 {
            self.bits.push(code, BITS);
        } else {
            let xor = code ^ self.previous;
            if xor == 0 {
                self.bits.push(0, 1);
            } else {
                let leading = xor.leading_zeros() - (32 - BITS);
                let trailing = xor.trailing_zeros();
                match self.window {
                    Some((l, n)) if leading >= l && trailing >= BITS - l - n => {
                        self.bits.push(0b10, 2);
                        self.bits.push(xor >> (BITS - l - n), n);
                    }
                    _ => {
                        let n = BITS - leading - trailing;
                        self.bits.push(0b11, 2);
                        self.bits.push(leading, 5);
                        self.bits.push(n - 1, 5);
                        self.bits.push(xor >> trailing, n);
                        self.window = Some((leading, n));
                    }
                }
            }
        }
        self.previous = code;
        self.len += 1;
    }

    /// Codes written.
    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The compressed bytes (the last one padded with zeros).
    pub fn bytes(&self) -> &[u8] {
        &self.bits.bytes
    }

    /// Bytes held, for accounting.
    pub fn capacity(&self) -> usize {
        self.bits.bytes.capacity()
    }

    /// Releases spare capacity once the column is complete.
    pub fn shrink(&mut self) {
        self.bits.bytes.shrink_to_fit();
    }
}

/// The error of a column that ends before its count of values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a compressed column ends after {read} of its {count} values")]
pub struct Truncated {
    pub read: u32,
    pub count: u32,
}

/// Decodes `count` codes from `bytes`, calling `each` with each one in order.
pub fn decode_column(bytes: &[u8], count: u32, mut each: impl FnMut(u32)) -> Result<(), Truncated> {
    let mut reader = BitReader {
        bytes,
        next: 0,
        buffer: 0,
        held: 0,
    };
    let mut previous = 0;
    let mut window = (0, 0);
    for read in 0..count {
        let truncated = Truncated { read, count };
        let code = if read == 0 {
            reader.take(BITS).ok_or(truncated)?
        } else if reader.take(1).ok_or(truncated)? == 0 {
            previous
        } else {
            if reader.take(1).ok_or(truncated)? == 1 {
                let leading = reader.take(5).ok_or(truncated)?;
                let n = reader.take(5).ok_or(truncated)? + 1;
                if leading + n > BITS {
                    return Err(truncated);
                }
                window = (leading, n);
            }
            let (l, n) = window;
            if n == 0 {
                return Err(truncated);
            }
            let bits = reader.take(n).ok_or(truncated)?;
            previous ^ (bits << (BITS - l - n))
        };
        each(code);
        previous = code;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn column(codes: &[u32]) -> Vec<u32> {
        let mut e = Encoder::default();
        codes.iter().for_each(|&c| e.push(c));
        let mut out = Vec::new();
        decode_column(e.bytes(), e.len(), |c| out.push(c)).expect("decodes");
        out
    }

    #[test]
    fn values_keep_twelve_bits_of_mantissa() {
        for v in [0.0, 1.0, -1.0, 8191.0, 2048.5, 0.25] {
            assert_eq!(kept(v), v, "{v}");
        }
        // 312,345.6 is kept within 2^-13 of itself.
        let v = 312_345.6;
        assert!(((kept(v) - v) / v).abs() <= 1.0 / 8192.0, "{}", kept(v));
        assert!(kept(f64::NAN).is_nan());
        assert!(kept(f64::INFINITY).is_nan());
        assert!(kept(f64::MAX).is_finite());
        // Keeping is idempotent: a kept value is kept as it is.
        assert_eq!(kept(kept(v)), kept(v));
    }

    #[test]
    fn a_steady_series_costs_a_bit_a_value() {
        let mut e = Encoder::default();
        for _ in 0..600 {
            e.push(encode(42.0));
        }
        // 24 bits for the first, then 599 bits.
        assert_eq!(e.bytes().len(), (24 + 599_usize).div_ceil(8));
    }

    #[test]
    fn a_truncated_column_is_an_error() {
        let mut e = Encoder::default();
        for v in [1.0, 2.0, 3.5, 1e6] {
            e.push(encode(v));
        }
        let bytes = &e.bytes()[..e.bytes().len() - 1];
        assert!(decode_column(bytes, 4, |_| ()).is_err());
    }

    proptest! {
        #[test]
        fn every_column_reads_back(values in proptest::collection::vec(
            prop_oneof![any::<f64>(), -1e6..1e6f64, Just(0.0), Just(f64::NAN)], 0..400)) {
            let codes: Vec<u32> = values.iter().map(|&v| encode(v)).collect();
            prop_assert_eq!(column(&codes), codes);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64), count in 0u32..100) {
            let _ = decode_column(&bytes, count, |_| ());
        }
    }
}
