//! Every signature format under every kind of policy, end to end: images pushed to the real
//! registry of the test stack and signed there with the real tools (Docker Content Trust with
//! the `notary` CLI on the stack's Notary server, `notation`, `cosign` 3 in its default bundle
//! format), decided by the `trustgate check --output json` binary as CI would run it.
//!
//! * [`every_image_under_every_policy`]: seven images (unsigned, each format alone, two
//!   formats, all three) under six policies (each format alone, `[NotaryV1, Notation]` AnyOf,
//!   `[Notation, Cosign]` AllOf, all three AnyOf). One table states, for every (policy, image),
//!   the verdict and every configured format's outcome (`results[].formats.<Format>.passed`),
//!   the signers of a passing format (`targets`, the Notation certificate subject, the cosign
//!   key ID `sha256:<hex>`) and the reason of a failing one. One `check` run per policy
//!   decides all seven images.
//! * [`tampered_signatures_are_rejected`]: real signatures moved or checked against the wrong
//!   trust material, each under its own policy of one policy directory, decided in one run: a
//!   Notation signature of another digest (the referrers tag copied onto another image's; the
//!   signature manifest re-pointed at another image, its envelope unchanged), a cosign
//!   signature of another digest (its `.sig` tag copied onto another image's), a cosign
//!   signature whose payload names another repository (copied across repositories), a Notation
//!   certificate outside the trust store, a Notation signer that is not a trusted identity, a
//!   cosign key and a Notation certificate listed in `revokedKeys`. Untampered controls pass
//!   in the same run.
//!
//! Needs the stack (`bash e2e/stack.sh up`) and the tools (`bash e2e/sigtools.sh fetch`);
//! without them each test prints a `SKIP` line and passes, unless `TRUSTGATE_REQUIRE_STACK=1` /
//! `TRUSTGATE_REQUIRE_SIGTOOLS=1`. `--nocapture` prints the tables.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

#[path = "check_e2e/table.rs"]
#[allow(dead_code)]
mod table;

mod formats_e2e {
    pub mod setup;
    pub mod verdicts;
}

use std::collections::BTreeMap;

use formats_e2e::setup::{
    Blocks, Format, NOTATION_SUBJECT, Pushed, Signing, cosign_key_id, notation_cert_of, policy_yaml,
};
use formats_e2e::verdicts::{Cell, Cells, Expect, check_all};
use serde_json::Value;

use Format::{Cosign, NotaryV1, Notation};

/// The images: short name (also the repository's last component), the formats it is signed
/// with, and whether its Notation signature is a COSE envelope (else JWS).
const IMAGES: &[(&str, &[Format], bool)] = &[
    ("unsigned", &[], false),
    ("dct", &[NotaryV1], false),
    ("notation", &[Notation], false),
    ("cosign", &[Cosign], false),
    ("dct-notation", &[NotaryV1, Notation], true),
    ("notation-cosign", &[Notation, Cosign], false),
    ("all-three", &[NotaryV1, Notation, Cosign], true),
];

/// The policies: short name, `signatures.formats`, `signatures.require`.
const POLICIES: &[(&str, &[Format], &str)] = &[
    ("dct", &[NotaryV1], "AnyOf"),
    ("notation", &[Notation], "AnyOf"),
    ("cosign", &[Cosign], "AnyOf"),
    ("dct-or-notation", &[NotaryV1, Notation], "AnyOf"),
    ("notation-and-cosign", &[Notation, Cosign], "AllOf"),
    ("any-of-three", &[NotaryV1, Notation, Cosign], "AnyOf"),
];

/// (policy, image, verdict, formats): `+F` format F passes, `-F` it fails because the image
/// carries no signature of F. Every configured format of the policy is listed.
#[rustfmt::skip]
const TABLE: &[(&str, &str, &str, &str)] = &[
    ("dct",                 "unsigned",        "REJECT", "-NotaryV1"),
    ("dct",                 "dct",             "ALLOW",  "+NotaryV1"),
    ("dct",                 "notation",        "REJECT", "-NotaryV1"),
    ("dct",                 "cosign",          "REJECT", "-NotaryV1"),
    ("dct",                 "dct-notation",    "ALLOW",  "+NotaryV1"),
    ("dct",                 "notation-cosign", "REJECT", "-NotaryV1"),
    ("dct",                 "all-three",       "ALLOW",  "+NotaryV1"),
    //
    ("notation",            "unsigned",        "REJECT", "-Notation"),
    ("notation",            "dct",             "REJECT", "-Notation"),
    ("notation",            "notation",        "ALLOW",  "+Notation"),
    ("notation",            "cosign",          "REJECT", "-Notation"),
    ("notation",            "dct-notation",    "ALLOW",  "+Notation"),
    ("notation",            "notation-cosign", "ALLOW",  "+Notation"),
    ("notation",            "all-three",       "ALLOW",  "+Notation"),
    //
    ("cosign",              "unsigned",        "REJECT", "-Cosign"),
    ("cosign",              "dct",             "REJECT", "-Cosign"),
    ("cosign",              "notation",        "REJECT", "-Cosign"),
    ("cosign",              "cosign",          "ALLOW",  "+Cosign"),
    ("cosign",              "dct-notation",    "REJECT", "-Cosign"),
    ("cosign",              "notation-cosign", "ALLOW",  "+Cosign"),
    ("cosign",              "all-three",       "ALLOW",  "+Cosign"),
    //
    ("dct-or-notation",     "unsigned",        "REJECT", "-NotaryV1 -Notation"),
    ("dct-or-notation",     "dct",             "ALLOW",  "+NotaryV1 -Notation"),
    ("dct-or-notation",     "notation",        "ALLOW",  "-NotaryV1 +Notation"),
    ("dct-or-notation",     "cosign",          "REJECT", "-NotaryV1 -Notation"),
    ("dct-or-notation",     "dct-notation",    "ALLOW",  "+NotaryV1 +Notation"),
    ("dct-or-notation",     "notation-cosign", "ALLOW",  "-NotaryV1 +Notation"),
    ("dct-or-notation",     "all-three",       "ALLOW",  "+NotaryV1 +Notation"),
    //
    ("notation-and-cosign", "unsigned",        "REJECT", "-Notation -Cosign"),
    ("notation-and-cosign", "dct",             "REJECT", "-Notation -Cosign"),
    ("notation-and-cosign", "notation",        "REJECT", "+Notation -Cosign"),
    ("notation-and-cosign", "cosign",          "REJECT", "-Notation +Cosign"),
    ("notation-and-cosign", "dct-notation",    "REJECT", "+Notation -Cosign"),
    ("notation-and-cosign", "notation-cosign", "ALLOW",  "+Notation +Cosign"),
    ("notation-and-cosign", "all-three",       "ALLOW",  "+Notation +Cosign"),
    //
    ("any-of-three",        "unsigned",        "REJECT", "-NotaryV1 -Notation -Cosign"),
    ("any-of-three",        "dct",             "ALLOW",  "+NotaryV1 -Notation -Cosign"),
    ("any-of-three",        "notation",        "ALLOW",  "-NotaryV1 +Notation -Cosign"),
    ("any-of-three",        "cosign",          "ALLOW",  "-NotaryV1 -Notation +Cosign"),
    ("any-of-three",        "dct-notation",    "ALLOW",  "+NotaryV1 +Notation -Cosign"),
    ("any-of-three",        "notation-cosign", "ALLOW",  "-NotaryV1 +Notation +Cosign"),
    ("any-of-three",        "all-three",       "ALLOW",  "+NotaryV1 +Notation +Cosign"),
];

/// What a format's reason says when the image carries no signature of it.
fn unsigned_reason(f: Format) -> &'static str {
    match f {
        // No `notary` repository was ever published for the image.
        NotaryV1 => "no trust data",
        Notation => "no Notation signature is attached",
        Cosign => "no cosign signature attached",
    }
}

/// The signers a passing format reports (substrings of one signer each).
struct Signers {
    cosign_id: String,
}

impl Signers {
    fn of(&self, f: Format) -> Vec<String> {
        match f {
            NotaryV1 => vec!["targets".into()],
            // RFC 4514 order or notation's; either way these attributes.
            Notation => vec!["CN=trustgate-test".into(), "O=Notary".into()],
            Cosign => vec![self.cosign_id.clone()],
        }
    }
}

/// `trustgate check --policy POLICY --output json IMAGES...`: the results (exit 1 expected, as
/// every run holds a rejected image).
fn check(label: &str, policy_args: &[&str], images: &[&str]) -> Vec<Value> {
    let mut args = vec!["check"];
    args.extend_from_slice(policy_args);
    args.extend(["--output", "json"]);
    args.extend_from_slice(images);
    let run = table::trustgate_in(label, &args, &[], None);
    run.expect_code(1);
    run.results()
}

#[test]
fn every_image_under_every_policy() {
    let Some(s) = Signing::new() else { return };
    let base = common::unique_repo("fmte2e/grid");
    let mut images: BTreeMap<&str, Pushed> = BTreeMap::new();
    let mut roots = Vec::new();
    for (name, formats, cose) in IMAGES {
        let image = s.push(
            &format!("{base}/{name}"),
            &format!("fmte2e {base} {name}"),
            "v1",
        );
        for f in *formats {
            roots.extend(s.sign(&image, *f, *cose));
        }
        images.insert(name, image);
    }
    let key = s.cosign_pub();
    let signers = Signers {
        cosign_id: cosign_key_id(&key),
    };
    let blocks = Blocks {
        notary: Some((
            s.st.notary_url.clone(),
            std::fs::read_to_string(&s.st.ca).expect("stack CA"),
            roots,
        )),
        trust_store: vec![s.notation_cert()],
        identities: vec![format!("x509.subject: {NOTATION_SUBJECT}")],
        cosign_keys: vec![key],
        revoked: Vec::new(),
    };
    let scope = vec![format!("{}/{base}/**", s.st.registry_http)];
    let order: Vec<&str> = IMAGES.iter().map(|(n, _, _)| *n).collect();
    let refs: Vec<&str> = order.iter().map(|n| images[n].reference.as_str()).collect();

    // The table is complete and names each policy's formats.
    assert_eq!(
        TABLE.len(),
        POLICIES.len() * IMAGES.len(),
        "one row per pair"
    );
    let mut rows = Vec::new();
    let mut results = Vec::new();
    for (policy, formats, require) in POLICIES {
        let path = s.write(
            policy,
            "policy.yaml",
            &policy_yaml(policy, &scope, formats, require, &blocks),
        );
        let path = path.to_str().expect("utf-8 path");
        results.extend(check(policy, &["--policy", path], &refs));
        for image in &order {
            let row = TABLE
                .iter()
                .find(|(p, i, _, _)| p == policy && i == image)
                .unwrap_or_else(|| panic!("no row for ({policy}, {image})"));
            let cells: Cells = row
                .3
                .split_whitespace()
                .map(|c| {
                    let f = Format::parse(&c[1..]);
                    let cell = match &c[..1] {
                        "+" => Cell::Pass(signers.of(f)),
                        "-" => Cell::Fail(unsigned_reason(f).into()),
                        other => panic!("row ({policy}, {image}): {other:?} is not + or -"),
                    };
                    (f, cell)
                })
                .collect();
            let mut listed: Vec<Format> = cells.iter().map(|(f, _)| *f).collect();
            listed.sort();
            let mut configured = formats.to_vec();
            configured.sort();
            assert_eq!(
                listed, configured,
                "row ({policy}, {image}) lists the formats"
            );
            rows.push(Expect {
                policy: (*policy).into(),
                image: (*image).into(),
                allowed: row.2 == "ALLOW",
                formats: cells,
            });
        }
    }
    check_all("every image under every policy", &rows, &results);
}

#[test]
fn tampered_signatures_are_rejected() {
    let Some(s) = Signing::new() else { return };
    let base = common::unique_repo("fmte2e/tamper");
    let reg = s.st.registry_http.clone();
    let repo = |name: &str| format!("{base}/{name}");
    let seed = |name: &str| format!("fmte2e {base} {name}");

    // A Notation signature of another digest: image A is signed; its referrers tag
    // (`sha256-<hex of A>`, the registry has no referrers API) is copied onto B's, so B's
    // signature list holds A's signature.
    let a = s.push(&repo("nt-digest"), &seed("nt-digest a"), "a");
    let b = s.push(&repo("nt-digest"), &seed("nt-digest b"), "b");
    s.sign(&a, Notation, false);
    s.tools.crane_copy(
        &format!("{}:{}", a.gun, a.referrers_tag()),
        &format!("{}:{}", b.gun, b.referrers_tag()),
    );
    // The same signature re-pointed at image C: its manifest's `subject` rewritten to C (the
    // envelope, which signs A's descriptor, unchanged) and listed under C's referrers tag.
    let c = s.push(&repo("nt-digest"), &seed("nt-digest c"), "c");
    let mut listed = s.manifest(&a.gun, &a.referrers_tag());
    let signature = listed["manifests"][0]["digest"]
        .as_str()
        .expect("A's signature")
        .to_owned();
    let mut moved = s.manifest(&a.gun, &signature);
    assert_eq!(moved["subject"]["digest"], a.digest.as_str());
    moved["subject"]["digest"] = c.digest.clone().into();
    moved["subject"]["size"] = c.size.into();
    let media_type = moved["mediaType"].as_str().expect("mediaType").to_owned();
    let (digest, size) = s.put_manifest(&c.gun, None, &media_type, &moved);
    listed["manifests"][0]["digest"] = digest.into();
    listed["manifests"][0]["size"] = size.into();
    s.put_manifest(&c.gun, Some(&c.referrers_tag()), common::OCI_INDEX, &listed);

    // A cosign signature whose payload names another repository: signed in `cs-origin` (the
    // legacy simple-signing format, whose payload names the repository; a bundle's statement
    // binds the digest only), image and `.sig` tag copied into `cs-copy`.
    let origin = s.push(&repo("cs-origin"), &seed("cs-origin"), "v1");
    let target = common::sigtools::Target {
        plain_http: true,
        ..Default::default()
    };
    s.tools
        .cosign_legacy(s.keys.path(), &origin.pinned(), None, &target);
    let copy = Pushed {
        reference: format!("{reg}/{}:v1", repo("cs-copy")),
        gun: format!("{reg}/{}", repo("cs-copy")),
        ..origin.clone()
    };
    s.tools.crane_copy(&origin.pinned(), &copy.reference);
    s.tools.crane_copy(
        &format!("{}:{}.sig", origin.gun, origin.referrers_tag()),
        &format!("{}:{}.sig", copy.gun, copy.referrers_tag()),
    );

    // A cosign signature of another digest: A signed (legacy format, whose `.sig` tag lists
    // simple-signing payloads naming the digest), its `.sig` tag copied onto B's.
    let cs_a = s.push(&repo("cs-digest"), &seed("cs-digest a"), "a");
    let cs_b = s.push(&repo("cs-digest"), &seed("cs-digest b"), "b");
    s.tools
        .cosign_legacy(s.keys.path(), &cs_a.pinned(), None, &target);
    s.tools.crane_copy(
        &format!("{}:{}.sig", cs_a.gun, cs_a.referrers_tag()),
        &format!("{}:{}.sig", cs_b.gun, cs_b.referrers_tag()),
    );

    // Notation signatures checked against another trust store / another identity, and a cosign
    // signature by a revoked key.
    let store = s.push(&repo("nt-store"), &seed("nt-store"), "v1");
    s.sign(&store, Notation, true);
    let identity = s.push(&repo("nt-identity"), &seed("nt-identity"), "v1");
    s.sign(&identity, Notation, false);
    let revoked = s.push(&repo("cs-revoked"), &seed("cs-revoked"), "v1");
    s.sign(&revoked, Cosign, false);
    let nt_revoked = s.push(&repo("nt-revoked"), &seed("nt-revoked"), "v1");
    s.sign(&nt_revoked, Notation, false);

    // A second notation test certificate, with the same subject and its own key.
    let other = tempfile::tempdir().expect("tempdir");
    s.tools.keys(other.path());
    let foreign = notation_cert_of(other.path());
    assert_ne!(foreign, s.notation_cert());

    let key = s.cosign_pub();
    let good = Blocks {
        trust_store: vec![s.notation_cert()],
        identities: vec![format!("x509.subject: {NOTATION_SUBJECT}")],
        cosign_keys: vec![key.clone()],
        ..Blocks::default()
    };
    let one = |p: &Pushed| vec![p.gun.clone()];
    let policies = [
        ("nt-digest", vec![a.gun.clone()], Notation, good.clone()),
        ("cs-digest", one(&cs_a), Cosign, good.clone()),
        (
            "cs-repository",
            vec![origin.gun.clone(), copy.gun.clone()],
            Cosign,
            good.clone(),
        ),
        (
            "nt-store",
            one(&store),
            Notation,
            Blocks {
                trust_store: vec![foreign],
                ..good.clone()
            },
        ),
        (
            "nt-identity",
            one(&identity),
            Notation,
            Blocks {
                identities: vec!["x509.subject: C=US, O=Notary, CN=someone-else".into()],
                ..good.clone()
            },
        ),
        (
            "cs-revoked",
            one(&revoked),
            Cosign,
            Blocks {
                revoked: vec![key.clone()],
                ..good.clone()
            },
        ),
        (
            "nt-revoked",
            one(&nt_revoked),
            Notation,
            Blocks {
                revoked: vec![s.notation_cert()],
                ..good.clone()
            },
        ),
    ];
    for (name, images, format, blocks) in &policies {
        s.write(
            "tamper",
            &format!("{name}.yaml"),
            &policy_yaml(name, images, &[*format], "AnyOf", blocks),
        );
    }
    let dir = s.files.path().join("tamper");
    let cosign_id = cosign_key_id(&key);
    let pass = |f: Format, signer: &str| vec![(f, Cell::Pass(vec![signer.to_owned()]))];
    let fail = |f: Format, why: &str| vec![(f, Cell::Fail(why.to_owned()))];
    let rows: Vec<(&Pushed, &str, bool, Cells)> = vec![
        (&a, "nt-digest", true, pass(Notation, "CN=trustgate-test")),
        // The copied list names a signature whose manifest is attached to A: not B's.
        (
            &b,
            "nt-digest",
            false,
            fail(Notation, "no Notation signature is attached"),
        ),
        (
            &c,
            "nt-digest",
            false,
            fail(Notation, "the signature is for another artifact"),
        ),
        (&cs_a, "cs-digest", true, pass(Cosign, &cosign_id)),
        (
            &cs_b,
            "cs-digest",
            false,
            fail(Cosign, "payload signs digest"),
        ),
        (&origin, "cs-repository", true, pass(Cosign, &cosign_id)),
        (
            &copy,
            "cs-repository",
            false,
            fail(Cosign, "payload names repository"),
        ),
        (
            &store,
            "nt-store",
            false,
            fail(Notation, "does not end in a trust store certificate"),
        ),
        (
            &identity,
            "nt-identity",
            false,
            fail(Notation, "matches no trusted identity"),
        ),
        (
            &revoked,
            "cs-revoked",
            false,
            fail(Cosign, "signed by revoked key"),
        ),
        (
            &nt_revoked,
            "nt-revoked",
            false,
            fail(Notation, "has a revoked key"),
        ),
    ];
    let images: Vec<&str> = rows.iter().map(|r| r.0.reference.as_str()).collect();
    let results = check(
        "tampered",
        &["--policy-dir", dir.to_str().expect("utf-8 path")],
        &images,
    );
    // Each result was decided by the policy meant for it.
    for ((_, policy, _, _), r) in rows.iter().zip(&results) {
        assert_eq!(r["policy"], *policy, "policy of {}", r["image"]);
    }
    let expects: Vec<Expect> = rows
        .into_iter()
        .map(|(p, policy, allowed, formats)| Expect {
            policy: policy.into(),
            image: p.reference.rsplit('/').next().unwrap_or_default().into(),
            allowed,
            formats,
        })
        .collect();
    check_all("tampered signatures", &expects, &results);
}
