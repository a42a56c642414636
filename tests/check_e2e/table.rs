//! The driver of `check_e2e`'s tables: a [`Case`] is one run of the `trustgate` binary (command
//! line, environment, stdin) and what it must give (exit status, each JSON result as a [`Want`],
//! each text line, stderr, time taken); [`run`] runs a table in order and names the case in
//! every failure.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One run of the `trustgate` binary.
pub struct Run {
    /// What the command line was (for messages).
    pub what: String,
    /// Exit status (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
}

impl Run {
    /// The whole JSON document of `--output json`.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "{}: stdout is not JSON ({e}):\n{}\nstderr: {}",
                self.what, self.stdout, self.stderr
            )
        })
    }

    /// `results` of the JSON document.
    pub fn results(&self) -> Vec<Value> {
        self.json()["results"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: no results array: {}", self.what, self.stdout))
            .clone()
    }

    /// Asserts the exit status.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "{}: exit status {} (want {code})\nstdout: {}\nstderr: {}",
            self.what, self.code, self.stdout, self.stderr
        );
        self
    }
}

/// Runs `trustgate ARGS` with `env` added and `stdin` piped in (else /dev/null); Notary
/// credentials from the caller's environment (`NOTARY_AUTH`, `NOTARY_USER`, `NOTARY_PASSWORD`)
/// are removed so every run says what it uses. `label` prefixes [`Run::what`].
pub fn trustgate_in(label: &str, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trustgate"));
    cmd.args(args)
        .env_remove("NOTARY_AUTH")
        .env_remove("NOTARY_USER")
        .env_remove("NOTARY_PASSWORD")
        .env("RUST_LOG", "warn")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn trustgate");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        pipe.write_all(text.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait for trustgate");
    let elapsed = start.elapsed();
    if std::env::var_os("CHECK_E2E_SHOW").is_some() {
        // `CHECK_E2E_SHOW=1 cargo test --test check_e2e -- --nocapture` shows every run.
        eprintln!(
            "[{label}] $ trustgate {}  [exit {:?}, {elapsed:?}]\n{}{}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Run {
        what: format!("case {label:?}: trustgate {}", args.join(" ")),
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed,
    }
}

/// [`trustgate_in`] with no stdin, for set-up runs.
pub fn trustgate(args: &[&str], env: &[(&str, &str)]) -> Run {
    trustgate_in("set-up", args, env, None)
}

/// What one result of `--output json` must show.
#[derive(Clone, Default)]
pub struct Want {
    /// `allowed`, with `reason` a one-line string holding every one of `reason`.
    allowed: Option<bool>,
    reason: Vec<String>,
    /// The reason (lower-cased) holds at least one of these.
    reason_any: Vec<String>,
    /// The reason does not hold any of these.
    reason_lacks: Vec<String>,
    /// The reason names the digest (at least 12 hex digits) right after the text.
    digest_after: Vec<(String, String)>,
    /// Field (a key, or a JSON pointer starting with `/`) equal / not equal to a value.
    eq: Vec<(String, Value)>,
    ne: Vec<(String, Value)>,
    /// String field starting with a prefix.
    prefix: Vec<(String, String)>,
    /// Field not present at all.
    absent: Vec<String>,
}

impl Want {
    /// No condition yet.
    pub fn any() -> Want {
        Want::default()
    }

    /// `allowed: true`, the reason holding every needle.
    pub fn admitted(needles: &[&str]) -> Want {
        Want {
            allowed: Some(true),
            reason: needles.iter().map(|s| (*s).to_owned()).collect(),
            ..Want::default()
        }
    }

    /// `allowed: false`, the reason holding every needle.
    pub fn rejected(needles: &[&str]) -> Want {
        Want {
            allowed: Some(false),
            ..Want::admitted(needles)
        }
    }

    /// `field` equals `value`.
    pub fn eq(mut self, field: &str, value: impl Into<Value>) -> Want {
        self.eq.push((field.to_owned(), value.into()));
        self
    }

    /// `field` differs from `value`.
    pub fn ne(mut self, field: &str, value: impl Into<Value>) -> Want {
        self.ne.push((field.to_owned(), value.into()));
        self
    }

    /// `field` is a string starting with `prefix`.
    pub fn prefix(mut self, field: &str, prefix: &str) -> Want {
        self.prefix.push((field.to_owned(), prefix.to_owned()));
        self
    }

    /// `field` is not in the result.
    pub fn absent(mut self, field: &str) -> Want {
        self.absent.push(field.to_owned());
        self
    }

    /// The reason names `digest` right after `after`.
    pub fn digest_after(mut self, after: &str, digest: &str) -> Want {
        self.digest_after
            .push((after.to_owned(), digest.to_owned()));
        self
    }

    /// The lower-cased reason holds at least one of `needles`.
    pub fn reason_any(mut self, needles: &[&str]) -> Want {
        self.reason_any = needles.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// The reason holds none of `needles`.
    pub fn reason_lacks(mut self, needles: &[&str]) -> Want {
        self.reason_lacks = needles.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    fn check(&self, at: &str, r: &Value) {
        let field = |f: &str| -> Value {
            if f.starts_with('/') {
                r.pointer(f).cloned().unwrap_or(Value::Null)
            } else {
                r[f].clone()
            }
        };
        if let Some(allowed) = self.allowed {
            assert_eq!(r["allowed"], Value::Bool(allowed), "{at}: allowed in {r:#}");
        }
        let checks_reason = self.allowed.is_some()
            || !(self.reason_any.is_empty()
                && self.reason_lacks.is_empty()
                && self.digest_after.is_empty());
        if checks_reason {
            let reason = r["reason"]
                .as_str()
                .unwrap_or_else(|| panic!("{at}: no reason string in {r:#}"));
            if self.allowed.is_some() {
                assert!(
                    !reason.contains('\n'),
                    "{at}: reason is one line: {reason:?}"
                );
            }
            for n in &self.reason {
                assert!(
                    reason.contains(n.as_str()),
                    "{at}: reason lacks {n:?}: {reason}"
                );
            }
            let lower = reason.to_ascii_lowercase();
            assert!(
                self.reason_any.is_empty()
                    || self.reason_any.iter().any(|n| lower.contains(n.as_str())),
                "{at}: reason holds none of {:?}: {reason}",
                self.reason_any
            );
            for n in &self.reason_lacks {
                assert!(
                    !reason.contains(n.as_str()),
                    "{at}: reason holds {n:?}: {reason}"
                );
            }
            for (after, digest) in &self.digest_after {
                assert!(
                    names_digest_after(reason, after, digest),
                    "{at}: reason names {digest} after {after:?}: {reason}"
                );
            }
        }
        for (f, v) in &self.eq {
            assert_eq!(&field(f), v, "{at}: {f} in {r:#}");
        }
        for (f, v) in &self.ne {
            assert_ne!(&field(f), v, "{at}: {f} in {r:#}");
        }
        for (f, p) in &self.prefix {
            let got = field(f);
            let s = got.as_str().unwrap_or_default();
            assert!(
                s.starts_with(p.as_str()),
                "{at}: {f} starts with {p:?} in {r:#}"
            );
        }
        for f in &self.absent {
            assert!(r.get(f).is_none(), "{at}: no {f} in {r:#}");
        }
    }
}

/// What one line of text output must be.
pub enum Line {
    /// Its first word.
    Word(String),
    /// Its start.
    Prefix(String),
    /// All of it.
    Exact(String),
}

/// One run of `trustgate` and what it must give.
pub struct Case {
    name: String,
    /// `None`: the `check` command line built from the fields below.
    raw: Option<Vec<String>>,
    policies: Vec<String>,
    namespace: String,
    output: &'static str,
    flags: Vec<String>,
    images: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Option<String>,
    code: Option<i32>,
    results: Option<Vec<Want>>,
    lines: Option<Vec<Line>>,
    stderr: Vec<String>,
    stdout_empty: bool,
    within: Option<(Duration, Duration)>,
}

impl Case {
    /// `trustgate check --policy P... --namespace NS --output json FLAGS... IMAGES...`.
    pub fn check(name: &str, policies: &[&Path], namespace: &str, images: &[&str]) -> Case {
        Case {
            name: name.to_owned(),
            raw: None,
            policies: policies
                .iter()
                .map(|p| p.to_str().expect("utf8 path").to_owned())
                .collect(),
            namespace: namespace.to_owned(),
            output: "json",
            flags: Vec::new(),
            images: images.iter().map(|s| (*s).to_owned()).collect(),
            env: Vec::new(),
            stdin: None,
            code: None,
            results: None,
            lines: None,
            stderr: Vec::new(),
            stdout_empty: false,
            within: None,
        }
    }

    /// `trustgate ARGS` exactly as given.
    pub fn raw(name: &str, args: &[&str]) -> Case {
        Case {
            raw: Some(args.iter().map(|s| (*s).to_owned()).collect()),
            ..Case::check(name, &[], "", &[])
        }
    }

    /// Flags after `--output` and before the images.
    pub fn flags(mut self, flags: &[&str]) -> Case {
        self.flags = flags.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// An environment variable for the run.
    pub fn env(mut self, key: &str, value: &str) -> Case {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Text piped to stdin.
    pub fn stdin(mut self, text: &str) -> Case {
        self.stdin = Some(text.to_owned());
        self
    }

    /// The exit status.
    pub fn code(mut self, code: i32) -> Case {
        self.code = Some(code);
        self
    }

    /// Exactly one JSON result, as `want` says.
    pub fn result(self, want: Want) -> Case {
        self.results(vec![want])
    }

    /// Exactly these JSON results, in order.
    pub fn results(mut self, wants: Vec<Want>) -> Case {
        self.results = Some(wants);
        self
    }

    /// `--output text`, one line per word, each line starting with that word.
    pub fn text(mut self, words: &[&str]) -> Case {
        self.output = "text";
        self.lines(words.iter().map(|w| Line::Word((*w).to_owned())).collect())
    }

    /// Exactly these text lines.
    pub fn lines(mut self, lines: Vec<Line>) -> Case {
        self.lines = Some(lines);
        self
    }

    /// Stderr holds every needle.
    pub fn stderr_has(mut self, needles: &[&str]) -> Case {
        self.stderr.extend(needles.iter().map(|s| (*s).to_owned()));
        self
    }

    /// Nothing (but white space) on stdout.
    pub fn stdout_empty(mut self) -> Case {
        self.stdout_empty = true;
        self
    }

    /// The run takes at least `min` and less than `max`.
    pub fn within(mut self, min: Duration, max: Duration) -> Case {
        self.within = Some((min, max));
        self
    }

    fn args(&self) -> Vec<String> {
        if let Some(raw) = &self.raw {
            return raw.clone();
        }
        let mut args: Vec<String> = vec!["check".into()];
        for p in &self.policies {
            args.extend(["--policy".into(), p.clone()]);
        }
        args.extend(["--namespace".into(), self.namespace.clone()]);
        args.extend(["--output".into(), self.output.into()]);
        args.extend(self.flags.iter().cloned());
        args.extend(self.images.iter().cloned());
        args
    }

    /// Runs the case and checks every expectation; returns the run.
    pub fn run(&self) -> Run {
        let args = self.args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let run = trustgate_in(&self.name, &args, &env, self.stdin.as_deref());
        let what = &run.what;
        let ctx = || format!("{what}\nstdout: {}\nstderr: {}", run.stdout, run.stderr);
        if let Some(code) = self.code {
            run.expect_code(code);
        }
        if let Some((min, max)) = self.within {
            assert!(
                run.elapsed >= min && run.elapsed < max,
                "{what}: took {:?}, want {min:?}..{max:?}",
                run.elapsed
            );
        }
        for n in &self.stderr {
            assert!(
                run.stderr.contains(n.as_str()),
                "stderr lacks {n:?}: {}",
                ctx()
            );
        }
        if self.stdout_empty {
            assert!(run.stdout.trim().is_empty(), "no results: {}", ctx());
        }
        if let Some(wants) = &self.results {
            let results = run.results();
            assert_eq!(results.len(), wants.len(), "result count: {}", ctx());
            for (i, (want, r)) in wants.iter().zip(&results).enumerate() {
                want.check(&format!("{what} result {i}"), r);
            }
        }
        if let Some(lines) = &self.lines {
            let got: Vec<&str> = run.stdout.lines().collect();
            assert_eq!(got.len(), lines.len(), "one line per image: {}", ctx());
            for (line, want) in got.iter().zip(lines) {
                let ok = match want {
                    Line::Word(w) => line.split_whitespace().next() == Some(w.as_str()),
                    Line::Prefix(p) => line.starts_with(p.as_str()),
                    Line::Exact(e) => line == e,
                };
                assert!(ok, "line {line:?} is not {:?}: {}", line_text(want), ctx());
            }
        }
        run
    }
}

fn line_text(l: &Line) -> &str {
    match l {
        Line::Word(s) | Line::Prefix(s) | Line::Exact(s) => s,
    }
}

/// Runs every case of `table` in order.
pub fn run(table: &[Case]) {
    for case in table {
        case.run();
    }
}

/// Whether `reason` names `digest` (in full, or abbreviated to at least 12 hex digits) right
/// after some occurrence of `after`.
pub fn names_digest_after(reason: &str, after: &str, digest: &str) -> bool {
    let full = digest.strip_prefix("sha256:").expect("sha256 digest");
    reason.match_indices(after).any(|(i, _)| {
        let rest = &reason[i + after.len()..];
        let Some(rest) = rest.trim_start().strip_prefix("sha256:") else {
            return false;
        };
        let hex: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
        hex.len() >= 12 && full.starts_with(&hex)
    })
}
