//! Low-level JSON helpers shared by every reader of untrusted JSON (AdmissionReviews, Docker
//! credentials, registry token answers, Notary metadata): checks that run over the raw bytes
//! before any parser sees them. Depends on nothing else in the crate.

/// True when the JSON text `bytes` nests arrays and objects at most `limit` levels deep
/// (brackets inside strings do not count). A linear scan, run before parsing so no parser
/// recursion or allocation is spent on a hostile body; it stops at the first level too deep.
pub fn json_depth_within(bytes: &[u8], limit: usize) -> bool {
    deepest(bytes, limit) <= limit
}

/// The deepest nesting of arrays and objects in the JSON text `bytes` (brackets inside strings
/// do not count), for readers that report how deep a refused document went. Scans it all:
/// prefer [`json_depth_within`] to merely check a limit.
pub fn json_depth(bytes: &[u8]) -> usize {
    deepest(bytes, usize::MAX)
}

/// The deepest nesting in `bytes`, or the first depth above `stop_above` (the scan ends there).
fn deepest(bytes: &[u8], stop_above: usize) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
                if depth > stop_above {
                    return depth;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_brackets_outside_strings_only() {
        assert!(json_depth_within(br#"{"a":[{"b":"[[[[{{{{"}]}"#, 3));
        assert!(!json_depth_within(br#"{"a":[{"b":[]}]}"#, 3));
        assert!(json_depth_within(br#"{"a":"\"[[[["}"#, 1));
        assert!(!json_depth_within(br#"{"a":"\\",[[[[0]]]]}"#, 4));
        assert_eq!(json_depth(br#"{"a":[{"b":"[[[[{{{{"}]}"#), 3);
        assert_eq!(json_depth(br#"{"a":"\"[[[["}"#), 1);
        assert_eq!(json_depth(b"[[]][[[]]]"), 3);
    }
}
