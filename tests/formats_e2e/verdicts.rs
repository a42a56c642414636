//! What `formats_e2e` expects of each result of `trustgate check --output json`: an [`Expect`]
//! per (policy, image) with the verdict and, for every format the policy evaluates, whether it
//! passes, its signers when it does and a reason substring when it does not. [`check_all`]
//! compares every row and prints the whole table, marking the rows that differ.

use std::fmt::Write as _;

use serde_json::Value;

use super::setup::Format;

/// One format's expected outcome.
#[derive(Clone, Debug)]
pub enum Cell {
    /// Passes; its `signers` hold these (each a substring of one signer).
    Pass(Vec<String>),
    /// Fails; its reason (and the top-level reason) holds this.
    Fail(String),
}

/// Every format's expected outcome.
pub type Cells = Vec<(Format, Cell)>;

/// One expected result.
#[derive(Clone, Debug)]
pub struct Expect {
    /// The policy's short name (a column of the printed table).
    pub policy: String,
    /// The image's short name.
    pub image: String,
    /// `allowed`.
    pub allowed: bool,
    /// Every format the policy evaluates, in any order.
    pub formats: Cells,
}

impl Expect {
    fn want_text(&self) -> String {
        let mut s = String::from(if self.allowed { "ALLOW " } else { "REJECT" });
        for (f, c) in &self.formats {
            let mark = if matches!(c, Cell::Pass(_)) { '+' } else { '-' };
            let _ = write!(s, " {}{mark}", f.as_str());
        }
        s
    }
}

fn got_text(r: &Value, formats: &[(Format, Cell)]) -> String {
    let mut s = match r["allowed"].as_bool() {
        Some(true) => String::from("ALLOW "),
        Some(false) => String::from("REJECT"),
        None => String::from("??????"),
    };
    for (f, _) in formats {
        let mark = match r["formats"][f.as_str()]["passed"].as_bool() {
            Some(true) => '+',
            Some(false) => '-',
            None => '?',
        };
        let _ = write!(s, " {}{mark}", f.as_str());
    }
    s
}

/// What differs between `r` and `e` (empty when the result is as expected).
fn differences(r: &Value, e: &Expect) -> Vec<String> {
    let mut d = Vec::new();
    if r["allowed"].as_bool() != Some(e.allowed) {
        d.push(format!("allowed is {}", r["allowed"]));
    }
    let reason = r["reason"].as_str().unwrap_or_default();
    if reason.contains('\n') {
        d.push("the reason is not one line".into());
    }
    let Some(shown) = r["formats"].as_object() else {
        d.push(format!("no formats object: {}", r["formats"]));
        return d;
    };
    let mut want: Vec<&str> = e.formats.iter().map(|(f, _)| f.as_str()).collect();
    let mut got: Vec<&str> = shown.keys().map(String::as_str).collect();
    want.sort_unstable();
    got.sort_unstable();
    if want != got {
        d.push(format!("formats evaluated {got:?}, want {want:?}"));
    }
    for (f, cell) in &e.formats {
        let name = f.as_str();
        let fr = &r["formats"][name];
        let passed = fr["passed"].as_bool();
        let why = fr["reason"].as_str().unwrap_or_default();
        let signers: Vec<&str> = fr["signers"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        match cell {
            Cell::Pass(want_signers) => {
                if passed != Some(true) {
                    d.push(format!("{name} does not pass: {why}"));
                    continue;
                }
                for w in want_signers {
                    if !signers.iter().any(|s| s.contains(w.as_str())) {
                        d.push(format!("{name} signers {signers:?} lack {w:?}"));
                    }
                }
                // What a passing format signed also shows in the result's signers.
                for s in &signers {
                    let top = r["signers"].as_array().cloned().unwrap_or_default();
                    if !top.iter().any(|t| t.as_str() == Some(s)) {
                        d.push(format!("result signers {top:?} lack {name}'s {s:?}"));
                    }
                }
            }
            Cell::Fail(needle) => {
                if passed != Some(false) {
                    d.push(format!("{name} does not fail: {fr}"));
                    continue;
                }
                if !why.contains(needle.as_str()) {
                    d.push(format!("{name} reason lacks {needle:?}: {why}"));
                }
                if !e.allowed && !reason.contains(needle.as_str()) {
                    d.push(format!("the reason lacks {name}'s {needle:?}: {reason}"));
                }
            }
        }
    }
    d
}

/// Compares `results` (one per row, in order) with `rows`; prints the table (every row, the
/// differing ones marked `MISMATCH` with what differs and the result; the test harness shows it
/// with `--nocapture` or on failure) and panics naming the rows that differ.
pub fn check_all(title: &str, rows: &[Expect], results: &[Value]) {
    assert_eq!(
        rows.len(),
        results.len(),
        "{title}: {} results for {} rows",
        results.len(),
        rows.len()
    );
    let mut table = format!(
        "{title}\n{:<22} {:<16} {:<44} {:<44}\n",
        "policy", "image", "want", "got"
    );
    let mut bad = String::new();
    for (e, r) in rows.iter().zip(results) {
        let diff = differences(r, e);
        let mark = if diff.is_empty() { "" } else { "  MISMATCH" };
        let _ = writeln!(
            table,
            "{:<22} {:<16} {:<44} {:<44}{mark}",
            e.policy,
            e.image,
            e.want_text(),
            got_text(r, &e.formats)
        );
        if !diff.is_empty() {
            let mut detail = format!("({}, {}):\n", e.policy, e.image);
            for line in &diff {
                let _ = writeln!(detail, "    - {line}");
            }
            let _ = writeln!(
                detail,
                "    image {} reason: {}",
                r["image"],
                r["reason"].as_str().unwrap_or_default()
            );
            table.push_str(&detail);
            bad.push_str(&detail);
        }
    }
    // Captured by the test harness: shown with `--nocapture` or when the test fails.
    eprintln!("{table}");
    assert!(
        bad.is_empty(),
        "rows differ from the table (printed above):\n{bad}"
    );
}
