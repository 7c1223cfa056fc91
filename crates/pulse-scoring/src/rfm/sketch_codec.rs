//! Strict validation of one DDSketch blob in DataDog's portable binary format, before it is
//! given to `DDSketch::from_java_bytes`.
//!
//! That decoder adds every decoded bin to its store with unchecked arithmetic: an absurd bin
//! key or count can overflow or index out of bounds. This module reads the blob exactly as the
//! decoder will (same flag bytes, same variable-length integers and doubles, same optional
//! version prefix rule) and accepts only what `DDSketch::to_java_bytes` produces for an
//! [`super::RfmSketch`] dimension:
//!
//! | flag   | content                                   | accepted when                          |
//! |--------|-------------------------------------------|----------------------------------------|
//! | `0x02` | index mapping: γ, index offset (f64 LE)   | γ is the configured one, offset 0      |
//! | `0xA0` | count (var double)                        | whole, equals the sum of the bins      |
//! | `0x88` | min (f64 LE)                              | within the value domain, ≤ max         |
//! | `0x8C` | max (f64 LE)                              | within the value domain                |
//! | `0x84` | sum (f64 LE)                              | finite                                 |
//! | `0x05` | positive store: bins as index deltas and counts | keys strictly increasing within `0..=max_key`, counts whole ≥ 1 |
//!
//! Each flag at most once; anything else (zero count, negative store, other bin encodings) is
//! rejected since an RFM sketch never holds it.

/// What a blob may contain.
#[derive(Debug, Clone, Copy)]
pub(super) struct BlobLimits {
    /// The sketch's γ, compared bit for bit.
    pub(super) gamma: f64,
    /// Smallest value ever added.
    pub(super) min_value: f64,
    /// Largest value ever added.
    pub(super) max_value: f64,
    /// Largest bin key (bin of `max_value`); the smallest is 0 (bin of 1).
    pub(super) max_key: i32,
}

const FLAG_INDEX_MAPPING_LOG: u8 = 0x02;
const FLAG_ZERO_COUNT: u8 = 0x04;
const FLAG_POSITIVE_STORE_DELTAS_AND_COUNTS: u8 = 0x05;
const FLAG_COUNT: u8 = 0xA0;
const FLAG_SUM: u8 = 0x84;
const FLAG_MIN: u8 = 0x88;
const FLAG_MAX: u8 = 0x8C;

/// Counts above this are not exactly representable as the format's doubles.
const MAX_COUNT: u64 = 1 << 53;

/// Validates `blob`; returns the number of values it holds, or why it is rejected.
pub(super) fn check_blob(blob: &[u8], limits: &BlobLimits) -> Result<u64, String> {
    if blob.is_empty() {
        return Err("empty sketch blob".to_owned());
    }
    // `from_java_bytes` skips a leading 0x02 version byte when a valid flag byte follows it;
    // `to_java_bytes` never writes one, so refuse rather than risk reading differently.
    if blob.len() >= 2 && blob[0] == 0x02 && decoder_skips_prefix_before(blob[1]) {
        return Err("unexpected version prefix".to_owned());
    }

    let mut input = blob;
    let mut gamma_seen = false;
    let mut count: Option<u64> = None;
    let mut min: Option<f64> = None;
    let mut max: Option<f64> = None;
    let mut sum_seen = false;
    let mut bins_total: Option<u64> = None;

    while let Some(flag) = read_byte(&mut input) {
        match flag {
            FLAG_INDEX_MAPPING_LOG => {
                once(&mut gamma_seen, "index mapping")?;
                let gamma = read_f64_le(&mut input)?;
                let index_offset = read_f64_le(&mut input)?;
                if gamma.to_bits() != limits.gamma.to_bits() || index_offset.to_bits() != 0 {
                    return Err(format!("unexpected index mapping γ={gamma} offset={index_offset}"));
                }
            }
            FLAG_COUNT => {
                if count.is_some() {
                    return Err("count given twice".to_owned());
                }
                count = Some(read_count(&mut input, "count")?);
            }
            FLAG_MIN | FLAG_MAX => {
                let slot = if flag == FLAG_MIN { &mut min } else { &mut max };
                if slot.is_some() {
                    return Err(format!("flag 0x{flag:02x} given twice"));
                }
                let value = read_f64_le(&mut input)?;
                if !(value >= limits.min_value && value <= limits.max_value) {
                    return Err(format!(
                        "min/max {value} outside [{}, {}]",
                        limits.min_value, limits.max_value
                    ));
                }
                *slot = Some(value);
            }
            FLAG_SUM => {
                once(&mut sum_seen, "sum")?;
                let sum = read_f64_le(&mut input)?;
                if !sum.is_finite() {
                    return Err(format!("sum {sum} is not finite"));
                }
            }
            FLAG_POSITIVE_STORE_DELTAS_AND_COUNTS => {
                if bins_total.is_some() {
                    return Err("store given twice".to_owned());
                }
                bins_total = Some(check_store(&mut input, limits)?);
            }
            FLAG_ZERO_COUNT => return Err("zero count in an rfm sketch".to_owned()),
            other => return Err(format!("unexpected flag byte 0x{other:02x}")),
        }
    }

    if !gamma_seen {
        return Err("index mapping missing".to_owned());
    }
    let bins_total = bins_total.unwrap_or(0);
    match (count, min, max) {
        (None, None, None) if bins_total == 0 && !sum_seen => Ok(0),
        (Some(count), Some(min), Some(max)) if count == bins_total && count > 0 && min <= max => Ok(count),
        _ => Err(format!(
            "inconsistent summary: count {count:?}, min {min:?}, max {max:?}, {bins_total} values in bins"
        )),
    }
}

/// Reads the bins of a positive store; returns their total count.
fn check_store(input: &mut &[u8], limits: &BlobLimits) -> Result<u64, String> {
    let bins = read_unsigned_var_long(input)?;
    let max_bins = u64::try_from(limits.max_key).unwrap_or(0) + 1;
    if bins == 0 || bins > max_bins {
        return Err(format!("{bins} bins, expected 1..={max_bins}"));
    }
    let mut key: i64 = 0;
    let mut previous: Option<i64> = None;
    let mut total: u64 = 0;
    for _ in 0..bins {
        let delta = read_signed_var_long(input)?;
        key = key.checked_add(delta).ok_or("bin key overflows")?;
        if key < 0 || key > i64::from(limits.max_key) {
            return Err(format!("bin key {key} outside 0..={}", limits.max_key));
        }
        if previous.is_some_and(|p| key <= p) {
            return Err(format!("bin key {key} not above the previous one"));
        }
        previous = Some(key);
        let count = read_count(input, "bin count")?;
        if count == 0 {
            return Err(format!("bin {key} is empty"));
        }
        total = total.checked_add(count).filter(|&t| t <= MAX_COUNT).ok_or("bin counts overflow")?;
    }
    Ok(total)
}

/// Fails if `seen` is already set, then sets it.
fn once(seen: &mut bool, what: &str) -> Result<(), String> {
    if std::mem::replace(seen, true) { Err(format!("{what} given twice")) } else { Ok(()) }
}

/// A count: a var double holding a whole number in `0..=2^53`.
fn read_count(input: &mut &[u8], what: &str) -> Result<u64, String> {
    let value = read_var_double(input)?;
    if !(value >= 0.0 && value <= MAX_COUNT as f64 && value.fract() == 0.0) {
        return Err(format!("{what} {value} is not a whole number in 0..=2^53"));
    }
    // Whole and within 0..=2^53: the conversion is exact.
    Ok(value as u64)
}

fn read_byte(input: &mut &[u8]) -> Option<u8> {
    let (&byte, rest) = input.split_first()?;
    *input = rest;
    Some(byte)
}

fn next_byte(input: &mut &[u8]) -> Result<u8, String> {
    read_byte(input).ok_or_else(|| "unexpected end of sketch blob".to_owned())
}

fn read_f64_le(input: &mut &[u8]) -> Result<f64, String> {
    let (bytes, rest) = input.split_first_chunk::<8>().ok_or("unexpected end of sketch blob")?;
    *input = rest;
    Ok(f64::from_le_bytes(*bytes))
}

/// The format's unsigned var long: 7 bits per byte, low first, at most 9 bytes (the 9th holds
/// 8 bits).
fn read_unsigned_var_long(input: &mut &[u8]) -> Result<u64, String> {
    let mut value: u64 = 0;
    let mut shift: u32 = 0;
    loop {
        let next = next_byte(input)?;
        if next < 0x80 || shift == 56 {
            return Ok(value | (u64::from(next) << shift));
        }
        value |= (u64::from(next) & 0x7F) << shift;
        shift += 7;
    }
}

/// Zig-zag encoded signed var long.
fn read_signed_var_long(input: &mut &[u8]) -> Result<i64, String> {
    let encoded = read_unsigned_var_long(input)?;
    // Zig-zag decoding, bit for bit: `(encoded >> 1) ^ -(encoded & 1)`.
    let magnitude = i64::from_ne_bytes((encoded >> 1).to_ne_bytes());
    let sign = (encoded & 1).wrapping_neg();
    Ok(magnitude ^ i64::from_ne_bytes(sign.to_ne_bytes()))
}

/// The format's var double: the bits of `value + 1` minus those of 1, rotated left by 6, written
/// 7 bits at a time from the top, at most 9 bytes.
fn read_var_double(input: &mut &[u8]) -> Result<f64, String> {
    let mut bits: u64 = 0;
    let mut shift: i32 = 57;
    loop {
        let next = next_byte(input)?;
        if shift == 1 {
            bits |= u64::from(next);
            break;
        }
        if next < 0x80 {
            bits |= u64::from(next) << shift;
            break;
        }
        bits |= (u64::from(next) & 0x7F) << shift;
        shift -= 7;
    }
    Ok(f64::from_bits(bits.rotate_right(6).wrapping_add(1.0f64.to_bits())) - 1.0)
}

/// Whether `from_java_bytes` treats a leading 0x02 as a version prefix when `next` follows it:
/// when `next` is one of its known flag bytes.
fn decoder_skips_prefix_before(next: u8) -> bool {
    if matches!(next, FLAG_ZERO_COUNT | FLAG_COUNT | FLAG_SUM | FLAG_MIN | FLAG_MAX | FLAG_INDEX_MAPPING_LOG)
    {
        return true;
    }
    let subflag = next >> 2;
    match next & 0x03 {
        1 | 3 => (1..=3).contains(&subflag),
        2 => subflag <= 4,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use sketches_ddsketch::{Config, DDSketch};

    use super::*;

    fn limits() -> BlobLimits {
        let config = Config::defaults();
        BlobLimits {
            gamma: config.gamma,
            min_value: 1.0,
            max_value: 1e15 + 1.0,
            max_key: config.key(1e15 + 1.0),
        }
    }

    fn header() -> Vec<u8> {
        let mut out = vec![FLAG_INDEX_MAPPING_LOG];
        out.extend_from_slice(&Config::defaults().gamma.to_le_bytes());
        out.extend_from_slice(&0.0f64.to_le_bytes());
        out
    }

    /// `header` + a summary (`count_byte`: the var double of the count, 0x02 = 1, 0x03 = 2) of
    /// values in [1, 2] + `store`.
    fn blob(count_byte: u8, store: &[u8]) -> Vec<u8> {
        let mut out = header();
        out.extend_from_slice(&[FLAG_COUNT, count_byte, FLAG_MIN]);
        out.extend_from_slice(&1.0f64.to_le_bytes());
        out.push(FLAG_MAX);
        out.extend_from_slice(&2.0f64.to_le_bytes());
        out.extend_from_slice(store);
        out
    }

    #[test]
    fn accepts_what_the_crate_encodes() {
        let mut sketch = DDSketch::new(Config::defaults());
        assert_eq!(check_blob(&sketch.to_java_bytes(), &limits()), Ok(0));
        for v in [1.0, 1.0, 2.5, 1e6, 1e15 + 1.0] {
            sketch.add(v);
        }
        assert_eq!(check_blob(&sketch.to_java_bytes(), &limits()), Ok(5));
    }

    #[test]
    fn var_encodings_match_the_crate() {
        // A single value 1.0: count 1 is the var double 0x02, key 0 the var long 0x00.
        let mut sketch = DDSketch::new(Config::defaults());
        sketch.add(1.0);
        let bytes = sketch.to_java_bytes();
        assert_eq!(bytes[..2], [FLAG_COUNT, 0x02]);
        assert_eq!(bytes[bytes.len() - 4..], [FLAG_POSITIVE_STORE_DELTAS_AND_COUNTS, 0x01, 0x00, 0x02]);
        let mut input: &[u8] = &[0x02];
        assert_eq!(read_var_double(&mut input), Ok(1.0));
        let mut input: &[u8] = &[0x03];
        assert_eq!(read_signed_var_long(&mut input), Ok(-2));
        let mut input: &[u8] = &[0xff; 9];
        assert_eq!(read_unsigned_var_long(&mut input), Ok(u64::MAX));
    }

    #[test]
    fn rejects_hostile_blobs() {
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", vec![]),
            ("no mapping", vec![FLAG_COUNT, 0x02]),
            ("huge key", blob(0x02, &[0x05, 0x01, 0xfe, 0xff, 0xff, 0xff, 0x0f, 0x02])),
            ("negative key", blob(0x02, &[0x05, 0x01, 0x01, 0x02])),
            ("repeated key", blob(0x03, &[0x05, 0x02, 0x02, 0x02, 0x00, 0x02])),
            ("too many bins", blob(0x02, &[0x05, 0xff, 0xff, 0xff, 0xff, 0x0f])),
            (
                "huge count",
                blob(0x02, &[0x05, 0x01, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            ),
            ("count mismatch", blob(0x03, &[0x05, 0x01, 0x00, 0x02])),
            ("zero count", [header(), vec![FLAG_ZERO_COUNT, 0x02]].concat()),
            ("negative store", blob(0x02, &[0x07, 0x01, 0x00, 0x02])),
            ("other bin encoding", blob(0x02, &[0x09, 0x01, 0x00])),
            ("truncated", blob(0x02, &[0x05, 0x01])),
            ("version prefix", [vec![0x02], blob(0x02, &[0x05, 0x01, 0x00, 0x02])].concat()),
            ("wrong gamma", {
                let mut b = blob(0x02, &[0x05, 0x01, 0x00, 0x02]);
                b[1] ^= 1;
                b
            }),
            ("mapping twice", [blob(0x02, &[0x05, 0x01, 0x00, 0x02]), header()].concat()),
        ];
        for (name, bytes) in cases {
            assert!(check_blob(&bytes, &limits()).is_err(), "{name} accepted");
        }
        // The same shape with a consistent count is fine.
        assert_eq!(check_blob(&blob(0x02, &[0x05, 0x01, 0x00, 0x02]), &limits()), Ok(1));
    }
}
