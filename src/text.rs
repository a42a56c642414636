//! Text from outside (registry errors, certificate subjects, cosign payloads: what an attacker
//! may write) made safe to print: control characters escaped as `\u{..}`, so no reason,
//! signer or listing line can move a terminal's cursor or forge a line of output, a log or an
//! Event. A low-level module: it depends on nothing else in the crate.

/// Escapes every control character of `s` in place (`\u{1b}`); leaves `s` untouched, without
/// copying, when it has none.
pub fn make_printable(s: &mut String) {
    if s.chars().any(char::is_control) {
        *s = printable(s);
    }
}

/// `s` with every control character escaped (`\u{1b}`).
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(
            printable("a\u{1b}[2Jb\nc\tdé"),
            "a\\u{1b}[2Jb\\u{a}c\\u{9}dé"
        );
        let mut s = String::from("plain: CN=release, O=Shop");
        make_printable(&mut s);
        assert_eq!(s, "plain: CN=release, O=Shop");
    }
}
