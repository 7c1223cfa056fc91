//! The binary encoding of [`CustomerState`]: versioned, compact and forward compatible.
//!
//! ```text
//! state   := FORMAT_VERSION:u8 section*
//! section := tag:varint len:varint payload[len]
//! ```
//! Sections a reader does not know are skipped, so a newer writer may add sections without
//! breaking older readers (fields inside a known section are only ever appended, and a reader
//! ignores trailing bytes of a section it knows). Integers are LEB128 varints (signed ones
//! zigzag-encoded), times are deltas from the anchor where that makes them small, and counters
//! are f64 little-endian, written only when non-zero (a presence mask says which).

use crate::error::{Result, ScoringError};
use crate::event::EventKind;
use crate::transition::{Membership, Memberships};

use super::{ActiveDays, CategoryState, CustomerState, PurchaseDays};

/// Current format version (first byte).
pub const FORMAT_VERSION: u8 = 1;

const TAG_CORE: u64 = 1;
const TAG_KIND_COUNTERS: u64 = 2;
const TAG_PURCHASES: u64 = 3;
const TAG_ACTIVE_DAYS: u64 = 4;
const TAG_CATEGORIES: u64 = 5;
const TAG_MEMBERSHIPS: u64 = 6;

impl CustomerState {
    /// Encodes the state (see the module docs for the format).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        out.push(FORMAT_VERSION);
        let anchor = self.last_seen_ms;

        let section = begin_section(&mut out, TAG_CORE);
        put_signed(&mut out, anchor);
        put_varint(&mut out, (anchor - self.first_seen_ms) as u64);
        put_varint(&mut out, self.events);
        end_section(&mut out, section);

        let section = begin_section(&mut out, TAG_KIND_COUNTERS);
        let mut mask = 0u64;
        for k in 0..EventKind::COUNT {
            if self.short_counts[k] != 0.0 {
                mask |= 1 << k;
            }
            if self.long_counts[k] != 0.0 {
                mask |= 1 << (k + EventKind::COUNT);
            }
        }
        put_varint(&mut out, mask);
        for k in 0..EventKind::COUNT {
            if self.short_counts[k] != 0.0 {
                put_f64(&mut out, self.short_counts[k]);
            }
        }
        for k in 0..EventKind::COUNT {
            if self.long_counts[k] != 0.0 {
                put_f64(&mut out, self.long_counts[k]);
            }
        }
        end_section(&mut out, section);

        if self.purchase_count > 0 {
            let section = begin_section(&mut out, TAG_PURCHASES);
            put_varint(&mut out, self.purchase_count);
            put_f64(&mut out, self.total_amount);
            put_f64(&mut out, self.long_spend);
            put_varint(&mut out, (anchor - self.last_purchase_ms.unwrap_or(anchor)) as u64);
            let last_day = self.purchase_days.last().unwrap_or(0);
            put_signed(&mut out, last_day);
            put_varint(&mut out, self.purchase_days.folded());
            put_signed(&mut out, last_day - self.purchase_days.first().unwrap_or(last_day));
            let retained = self.purchase_days.retained();
            put_varint(&mut out, retained.len() as u64);
            // Newest first, as gaps from the previous (newer) day.
            let mut previous = last_day;
            for &day in retained.iter().rev() {
                put_varint(&mut out, (previous - day) as u64);
                previous = day;
            }
            end_section(&mut out, section);
        }

        let section = begin_section(&mut out, TAG_ACTIVE_DAYS);
        put_signed(&mut out, self.active_days.anchor_day());
        let bits = self.active_days.bits();
        let used = (128 - bits.leading_zeros()).div_ceil(8) as usize;
        out.extend_from_slice(&bits.to_le_bytes()[..used]);
        end_section(&mut out, section);

        if !self.categories.is_empty() {
            let section = begin_section(&mut out, TAG_CATEGORIES);
            put_varint(&mut out, self.categories.len() as u64);
            for c in &self.categories {
                put_bytes(&mut out, c.name.as_bytes());
                put_varint(&mut out, (anchor - c.last_seen_ms) as u64);
                put_f64(&mut out, c.short_activity);
                put_f64(&mut out, c.long_activity);
                if c.long_spend != 0.0 {
                    out.push(1);
                    put_f64(&mut out, c.long_spend);
                } else {
                    out.push(0);
                }
            }
            end_section(&mut out, section);
        }

        let m = &self.memberships;
        if *m != Memberships::default() {
            let section = begin_section(&mut out, TAG_MEMBERSHIPS);
            for slot in [&m.activity_segment, &m.lifecycle, &m.level, &m.rfm_segment] {
                put_membership(&mut out, slot.as_ref(), anchor);
            }
            put_varint(&mut out, m.custom.len() as u64);
            for membership in &m.custom {
                put_membership(&mut out, Some(membership), anchor);
            }
            end_section(&mut out, section);
        }
        out
    }

    /// Decodes [`Self::encode`]'s output, skipping sections of newer writers.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut reader = Reader::new(bytes, "customer state");
        let version = reader.u8()?;
        if version != FORMAT_VERSION {
            return Err(reader.error(&format!("unsupported format version {version}")));
        }
        let mut state = CustomerState::new();
        let mut anchor = None;
        while !reader.is_empty() {
            let tag = reader.varint()?;
            let payload = reader.bytes()?;
            let mut r = Reader::new(payload, "customer state");
            if tag != TAG_CORE && anchor.is_none() && tag <= TAG_MEMBERSHIPS {
                return Err(r.error("core section must come first"));
            }
            let anchor_ms = anchor.unwrap_or(0);
            match tag {
                TAG_CORE => {
                    let last_seen = r.signed()?;
                    state.last_seen_ms = last_seen;
                    state.first_seen_ms = last_seen - r.varint()? as i64;
                    state.events = r.varint()?;
                    anchor = Some(last_seen);
                }
                TAG_KIND_COUNTERS => {
                    let mask = r.varint()?;
                    for k in 0..EventKind::COUNT {
                        if mask & (1 << k) != 0 {
                            state.short_counts[k] = r.f64()?;
                        }
                    }
                    for k in 0..EventKind::COUNT {
                        if mask & (1 << (k + EventKind::COUNT)) != 0 {
                            state.long_counts[k] = r.f64()?;
                        }
                    }
                }
                TAG_PURCHASES => {
                    state.purchase_count = r.varint()?;
                    state.total_amount = r.f64()?;
                    state.long_spend = r.f64()?;
                    state.last_purchase_ms = Some(anchor_ms - r.varint()? as i64);
                    let last_day = r.signed()?;
                    let folded = r.varint()?;
                    let first_day = last_day - r.signed()?;
                    let count = r.varint()?;
                    if count > super::purchase_days::MAX_RETAINED_DAYS as u64 {
                        return Err(r.error("too many purchase days"));
                    }
                    let mut days = Vec::with_capacity(count as usize);
                    let mut day = last_day;
                    for i in 0..count {
                        let gap = r.varint()? as i64;
                        if i > 0 && gap == 0 {
                            return Err(r.error("repeated purchase day"));
                        }
                        day -= gap;
                        days.push(day);
                    }
                    days.reverse();
                    state.purchase_days = PurchaseDays::from_parts(days, folded, Some(first_day));
                }
                TAG_ACTIVE_DAYS => {
                    let anchor_day = r.signed()?;
                    let rest = r.rest();
                    if rest.len() > 16 {
                        return Err(r.error("active-day bitmap longer than 128 bits"));
                    }
                    let mut raw = [0u8; 16];
                    raw[..rest.len()].copy_from_slice(rest);
                    state.active_days = ActiveDays::from_parts(anchor_day, u128::from_le_bytes(raw));
                }
                TAG_CATEGORIES => {
                    let count = r.varint()?;
                    state.categories.reserve(count.min(256) as usize);
                    for _ in 0..count {
                        let raw = r.bytes()?;
                        let name =
                            std::str::from_utf8(raw).map_err(|_| r.error("category name is not UTF-8"))?;
                        let mut category = CategoryState::new(name.into(), anchor_ms - r.varint()? as i64);
                        category.short_activity = r.f64()?;
                        category.long_activity = r.f64()?;
                        if r.u8()? == 1 {
                            category.long_spend = r.f64()?;
                        }
                        state.categories.push(category);
                    }
                    if !state.categories.windows(2).all(|w| w[0].name < w[1].name) {
                        return Err(r.error("categories not sorted"));
                    }
                }
                TAG_MEMBERSHIPS => {
                    let m = &mut state.memberships;
                    m.activity_segment = read_membership(&mut r, anchor_ms)?;
                    m.lifecycle = read_membership(&mut r, anchor_ms)?;
                    m.level = read_membership(&mut r, anchor_ms)?;
                    m.rfm_segment = read_membership(&mut r, anchor_ms)?;
                    let count = r.varint()?;
                    for _ in 0..count {
                        match read_membership(&mut r, anchor_ms)? {
                            Some(membership) => m.custom.push(membership),
                            None => return Err(r.error("empty custom membership")),
                        }
                    }
                }
                _ => {} // A newer writer's section: skip.
            }
        }
        if anchor.is_none() {
            return Err(reader.error("missing core section"));
        }
        Ok(state)
    }
}

fn put_membership(out: &mut Vec<u8>, membership: Option<&Membership>, anchor_ms: i64) {
    match membership {
        None => put_bytes(out, b""),
        Some(m) => {
            put_bytes(out, m.segment.as_bytes());
            put_signed(out, anchor_ms - m.since_ms);
        }
    }
}

fn read_membership(r: &mut Reader<'_>, anchor_ms: i64) -> Result<Option<Membership>> {
    let segment = r.bytes()?;
    if segment.is_empty() {
        return Ok(None);
    }
    let segment = String::from_utf8(segment.to_vec()).map_err(|_| r.error("segment is not UTF-8"))?;
    let since_ms = anchor_ms - r.signed()?;
    Ok(Some(Membership { segment, since_ms }))
}

/// Starts a section in place: writes the tag and reserves two bytes for the length, which
/// [`end_section`] fills in (writing in place saves a buffer and a copy per section).
fn begin_section(out: &mut Vec<u8>, tag: u64) -> usize {
    put_varint(out, tag);
    out.extend_from_slice(&[0, 0]);
    out.len()
}

/// Writes the length of the section whose payload started at `payload_start` as a canonical
/// varint, moving the payload if the length needs other than two bytes.
fn end_section(out: &mut Vec<u8>, payload_start: usize) {
    let mut len = (out.len() - payload_start) as u64;
    let mut prefix = [0u8; 10];
    let mut used = 0;
    loop {
        let more = len >= 0x80;
        prefix[used] = (len as u8 & 0x7f) | if more { 0x80 } else { 0 };
        used += 1;
        len >>= 7;
        if !more {
            break;
        }
    }
    let reserved = payload_start - 2..payload_start;
    if used == 2 {
        out[reserved].copy_from_slice(&prefix[..2]);
    } else {
        out.splice(reserved, prefix[..used].iter().copied());
    }
}

/// Appends `v` as an LEB128 varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` zigzag-encoded as a varint.
pub(crate) fn put_signed(out: &mut Vec<u8>, v: i64) {
    put_varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_f64(out: &mut Vec<u8>, v: f64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A bounds-checked cursor over an encoding; every failure names what was being decoded.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Self { bytes, position: 0, what }
    }

    pub(crate) fn error(&self, reason: &str) -> ScoringError {
        ScoringError::Decode { what: self.what, reason: format!("{reason} at byte {}", self.position) }
    }

    fn is_empty(&self) -> bool {
        self.position >= self.bytes.len()
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.position.checked_add(n).filter(|&end| end <= self.bytes.len());
        let Some(end) = end else {
            return Err(self.error("unexpected end"));
        };
        let slice = &self.bytes[self.position..end];
        self.position = end;
        Ok(slice)
    }

    fn rest(&mut self) -> &'a [u8] {
        let slice = &self.bytes[self.position..];
        self.position = self.bytes.len();
        slice
    }

    #[inline]
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u64_be(&mut self) -> Result<u64> {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(raw))
    }

    #[inline]
    fn f64(&mut self) -> Result<f64> {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(self.take(8)?);
        let v = f64::from_le_bytes(raw);
        if !v.is_finite() {
            return Err(self.error("non-finite counter"));
        }
        Ok(v)
    }

    /// Reads an LEB128 varint; one-byte values (most deltas and counts) take the fast path.
    #[inline]
    pub(crate) fn varint(&mut self) -> Result<u64> {
        match self.bytes.get(self.position) {
            Some(&byte) if byte < 0x80 => {
                self.position += 1;
                Ok(u64::from(byte))
            }
            _ => self.varint_multi_byte(),
        }
    }

    fn varint_multi_byte(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for (i, &byte) in self.bytes[self.position..].iter().take(10).enumerate() {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.position += i + 1;
                return Ok(value);
            }
        }
        if self.bytes.len() - self.position >= 10 {
            Err(self.error("varint longer than 10 bytes"))
        } else {
            Err(self.error("unexpected end"))
        }
    }

    #[inline]
    pub(crate) fn signed(&mut self) -> Result<i64> {
        let raw = self.varint()?;
        Ok((raw >> 1) as i64 ^ -((raw & 1) as i64))
    }

    #[inline]
    fn bytes(&mut self) -> Result<&'a [u8]> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| self.error("length overflows"))?;
        self.take(len)
    }
}
