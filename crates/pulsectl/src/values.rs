//! Parsers of argument values: dimensions, event kinds, durations and hex bytes. Each accepts
//! what a person would type and says what it expected otherwise.

use pulse_proto::v1;

/// A dimension: `activity-segment | lifecycle | level | rfm | custom`, case-insensitive, `-`
/// or `_`, also the proto names (`DIMENSION_RFM_SEGMENT`).
pub fn dimension(text: &str) -> Result<v1::Dimension, String> {
    let upper = text.trim().to_ascii_uppercase().replace('-', "_");
    let name = upper.strip_prefix("DIMENSION_").unwrap_or(&upper);
    match name {
        "ACTIVITY_SEGMENT" | "ACTIVITY" | "SEGMENT" => Ok(v1::Dimension::ActivitySegment),
        "LIFECYCLE" => Ok(v1::Dimension::Lifecycle),
        "LEVEL" => Ok(v1::Dimension::Level),
        "RFM" | "RFM_SEGMENT" => Ok(v1::Dimension::RfmSegment),
        "CUSTOM" => Ok(v1::Dimension::Custom),
        _ => Err(format!(
            "unknown dimension {text:?}: expected activity-segment, lifecycle, level, rfm or custom"
        )),
    }
}

/// An event kind: `PURCHASE` or `EVENT_KIND_PURCHASE`, case-insensitive.
pub fn event_kind(text: &str) -> Result<v1::EventKind, String> {
    let upper = text.trim().to_ascii_uppercase();
    let name = upper.strip_prefix("EVENT_KIND_").unwrap_or(&upper);
    match name {
        "PURCHASE" => Ok(v1::EventKind::Purchase),
        "VISIT" => Ok(v1::EventKind::Visit),
        "INTERACTION" => Ok(v1::EventKind::Interaction),
        "PAYMENT" => Ok(v1::EventKind::Payment),
        "SUPPORT" => Ok(v1::EventKind::Support),
        _ => Err(format!(
            "unknown event kind {text:?}: expected PURCHASE, VISIT, INTERACTION, PAYMENT or SUPPORT"
        )),
    }
}

/// A duration as a number and a unit (`7d`, `12h`, `30m`, `45s`, `500ms`), in ms.
pub fn duration_ms(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: i64 =
        number.parse().map_err(|_| format!("{text:?}: expected a number and a unit, e.g. 7d"))?;
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return Err(format!("{text:?}: unknown unit {unit:?}, expected ms, s, m, h, d or w")),
    };
    number.checked_mul(unit_ms).ok_or_else(|| format!("{text:?} is too long"))
}

/// Bytes from hex digits (either case).
pub fn hex_bytes(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) {
        return Err(format!("{text:?}: odd number of hex digits"));
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| format!("{text:?}: not hex digits"))
        })
        .collect()
}

/// Bytes as lowercase hex digits.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimensions_by_any_spelling() {
        assert_eq!(dimension("activity-segment"), Ok(v1::Dimension::ActivitySegment));
        assert_eq!(dimension("Lifecycle"), Ok(v1::Dimension::Lifecycle));
        assert_eq!(dimension("DIMENSION_RFM_SEGMENT"), Ok(v1::Dimension::RfmSegment));
        assert_eq!(dimension("rfm"), Ok(v1::Dimension::RfmSegment));
        assert_eq!(dimension("dimension_level"), Ok(v1::Dimension::Level));
        assert_eq!(dimension("CUSTOM"), Ok(v1::Dimension::Custom));
        assert!(dimension("weekday").unwrap_err().contains("unknown dimension"));
    }

    #[test]
    fn kinds_short_or_long() {
        assert_eq!(event_kind("purchase"), Ok(v1::EventKind::Purchase));
        assert_eq!(event_kind("EVENT_KIND_SUPPORT"), Ok(v1::EventKind::Support));
        assert!(event_kind("REFUND").is_err());
        assert!(event_kind("EVENT_KIND_UNSPECIFIED").is_err());
    }

    #[test]
    fn durations_and_hex() {
        assert_eq!(duration_ms("7d"), Ok(604_800_000));
        assert_eq!(duration_ms("90m"), Ok(5_400_000));
        assert_eq!(duration_ms("250ms"), Ok(250));
        assert!(duration_ms("7").is_err());
        assert!(duration_ms("d").is_err());
        assert_eq!(hex_bytes("00ff1A"), Ok(vec![0, 255, 26]));
        assert_eq!(hex(&[0, 255, 26]), "00ff1a");
        assert!(hex_bytes("abc").is_err());
        assert!(hex_bytes("zz").is_err());
    }
}
