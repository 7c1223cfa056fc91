//! PLACEHOLDER — owned by the rfm/rules helper; replace entirely.
