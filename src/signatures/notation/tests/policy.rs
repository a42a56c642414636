//! The policy's Notation block (trust store, trusted identities in Notation's syntax) and the
//! format rule over every attached signature ([`evaluate`]).

use super::*;

fn new_policy(store: &[String], ids: &[&str]) -> Result<NotationPolicy, NotationError> {
    NotationPolicy::new(
        store,
        &ids.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        Revoked::default(),
    )
}

#[test]
fn trust_store_entries_are_pem_certificates_and_errors_name_the_entry() {
    let a = self_signed(leaf_params("a"), Kind::P256);
    let b = self_signed(leaf_params("b"), Kind::P256);
    // Several certificates in one entry.
    let p = new_policy(&[format!("{}{}", a.pem, b.pem)], &["*"]).unwrap();
    for leaf in [&a, &b] {
        verify(
            &p,
            &subject(),
            &jws_artifact(Envelope::new(leaf, &[leaf]).jws()),
            NOW,
        )
        .unwrap();
    }
    let err = new_policy(&[a.pem.clone(), "not a certificate".into()], &["*"]).unwrap_err();
    assert!(err.to_string().contains("trustStore[1]"), "{err}");
    let err = new_policy(&[], &["*"]).unwrap_err();
    assert!(matches!(err, NotationError::Policy { .. }), "{err}");
}

#[test]
fn trusted_identities_follow_notation_syntax() {
    let store = [self_signed(leaf_params("a"), Kind::P256).pem];
    for ok in [
        vec!["*"],
        vec!["x509.subject: C=US, ST=WA, O=Shop"],
        vec![
            "x509.subject: C=US, S=WA, O=Shop, CN=release",
            "x509.subject: C=US, ST=WA, O=Other",
        ],
        vec![r"x509.subject: C=US, ST=WA, O=Shop\, Inc., CN=a\2Bb"],
    ] {
        new_policy(&store, &ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
    }
    for (bad, why) in [
        (vec![], "empty"),
        (
            vec!["*", "x509.subject: C=US, ST=WA, O=Shop"],
            "cannot be combined",
        ),
        (vec!["x509.subject: C=US, CN=release"], "no O"),
        (vec!["x509.subject: O=Shop, CN=release"], "no C"),
        (vec!["x509.subject: C=US, ST=WA"], "no O"),
        (vec!["x509.subject: C=US, ST=WA, O=Shop, O=Other"], "twice"),
        (
            vec!["x509.subject: C=US, ST=WA, O=Shop+OU=x"],
            "multi-valued",
        ),
        (vec!["x509.subject: C=US, ST=WA, O=#0403"], "=#"),
        (vec!["x509.email: a@b"], "not supported"),
        (vec!["CN=release"], "prefix"),
    ] {
        let err = new_policy(&store, &bad).unwrap_err().to_string();
        assert!(err.contains(why), "{bad:?}: {err}");
    }
}

#[test]
fn escaped_identity_values_match_the_subject() {
    let mut lp = leaf_params("a+b");
    lp.distinguished_name
        .push(rcgen::DnType::OrganizationName, "Shop, Inc.");
    let leaf = self_signed(lp, Kind::P256);
    let p = policy(
        &[&leaf],
        &[r"x509.subject: C=US, ST=WA, O=Shop\, Inc., CN=a\2Bb"],
    );
    verify(
        &p,
        &subject(),
        &jws_artifact(Envelope::new(&leaf, &[&leaf]).jws()),
        NOW,
    )
    .unwrap();
}

#[test]
fn evaluate_passes_with_one_valid_signature_among_several() {
    let good = self_signed(leaf_params("release"), Kind::P256);
    let stranger = self_signed(leaf_params("stranger"), Kind::P256);
    let p = policy(&[&good], &["*"]);
    let sigs = [
        jws_artifact(Envelope::new(&stranger, &[&stranger]).jws()),
        cose_artifact(Envelope::new(&good, &[&good]).cose()),
        jws_artifact(Envelope::new(&good, &[&good]).jws()),
    ];
    let ev = evaluate(&p, &subject(), &sigs, NOW);
    assert!(ev.passed, "{ev:?}");
    assert_eq!(
        ev.signers,
        vec!["CN=release,O=Shop,L=Seattle,ST=WA,C=US".to_string()]
    );
    assert!(ev.reason.contains("2 of 3"), "{}", ev.reason);
}

#[test]
fn evaluate_reports_the_count_and_the_most_relevant_failure() {
    let good = self_signed(leaf_params("release"), Kind::P256);
    let stranger = self_signed(leaf_params("stranger"), Kind::P256);
    let p = policy(&[&good], &["*"]);
    let mut other_digest = Envelope::new(&good, &[&good]);
    other_digest.target.digest = format!("sha256:{}", "ef".repeat(32));
    let mut garbage = jws_artifact(b"{}".to_vec());
    garbage.manifest_digest = "sha256:garbage".into();
    let sigs = [
        garbage,
        jws_artifact(other_digest.jws()),
        jws_artifact(Envelope::new(&stranger, &[&stranger]).jws()),
    ];
    let ev = evaluate(&p, &subject(), &sigs, NOW);
    assert!(!ev.passed);
    assert!(ev.signers.is_empty());
    assert!(ev.reason.contains("3 tried"), "{}", ev.reason);
    assert!(
        ev.reason.contains("trust store"),
        "the chain failure got furthest: {}",
        ev.reason
    );
    assert!(!ev.reason.contains('\n'));
}

#[test]
fn evaluate_without_signatures_or_with_too_many_fails() {
    let good = self_signed(leaf_params("release"), Kind::P256);
    let p = policy(&[&good], &["*"]);
    let ev = evaluate(&p, &subject(), &[], NOW);
    assert!(!ev.passed);
    assert!(ev.reason.contains("no Notation signature"), "{}", ev.reason);
    let one = jws_artifact(Envelope::new(&good, &[&good]).jws());
    let limit = LIMITS.signatures_per_format;
    let ev = evaluate(&p, &subject(), &vec![one.clone(); limit + 1], NOW);
    assert!(!ev.passed);
    assert!(ev.reason.contains("more than the limit"), "{}", ev.reason);
    assert!(evaluate(&p, &subject(), &vec![one; limit], NOW).passed);
}
