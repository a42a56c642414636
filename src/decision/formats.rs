//! The signature formats of a policy (docs/signature-formats.md) in the engine: the Notation and
//! cosign signatures attached to the resolved digest are read from the registry (cached per
//! digest and format, one fetch at a time), verified on the blocking pool with the policy's
//! parsed blocks, and every evaluated format's outcome is combined as `signatures.require` says
//! (`AnyOf`: one pass admits; `AllOf`: every format must pass). A policy that evaluates Docker
//! Content Trust alone never comes here and keeps its reasons word for word.
//!
//! At most `LIMITS.signature_evaluations_at_once` format evaluations (fetch and verification)
//! run at once in the engine, however many images are being decided; the others wait for a turn
//! within their image's deadline.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;

use crate::cache::SignatureCache;
use crate::image::credentials::Credentials;
use crate::image::reference::{Digest, ImageRef};
use crate::image::registry::SignatureFormat as ArtifactFormat;
use crate::image::registry::{ArtifactError, RegistryError, RegistryOptions};
use crate::policy::CompiledPolicy;
use crate::policy::formats::{Require, SignatureFormat};
use crate::signatures::{Attached, Evaluation, Subject, cosign, notation};

use super::Engine;
use super::rules::{Failure, Passed, ReasonClass};

/// The per-format results shown with a decision (`formats` in `check --output json`).
pub type FormatResults = BTreeMap<SignatureFormat, Evaluation>;

/// One format's outcome, as verification produced it.
pub(super) type FormatOutcome = (SignatureFormat, Result<Passed, Failure>);

impl Engine {
    /// The outcomes of the new formats (Notation, cosign) `compiled` evaluates for `digest`, in
    /// the policy's order. The manifest is described once and shared by both.
    pub(super) async fn new_formats(
        &self,
        image: &ImageRef,
        digest: &Digest,
        compiled: &CompiledPolicy,
        credentials: &Credentials,
    ) -> Vec<FormatOutcome> {
        let wanted: Vec<SignatureFormat> = compiled
            .formats
            .formats
            .iter()
            .copied()
            .filter(|f| *f != SignatureFormat::NotaryV1)
            .collect();
        if wanted.is_empty() {
            return Vec::new();
        }
        let pinned = image.with_digest(digest.clone());
        let options = RegistryOptions {
            timeout: self.config.registry_timeout,
            ..compiled.registry.clone()
        };
        let subject = match self.resolver.describe(&pinned, &options, credentials).await {
            Ok(s) => s,
            Err(e) => {
                let failure = fetch_failure(digest, &e, "cannot read the manifest");
                return wanted
                    .into_iter()
                    .map(|f| (f, Err(failure.clone())))
                    .collect();
            }
        };
        let evaluations = wanted.iter().map(|format| {
            self.format_outcome(
                *format,
                &pinned,
                digest,
                &subject,
                compiled,
                &options,
                credentials,
            )
        });
        wanted
            .iter()
            .copied()
            .zip(futures::future::join_all(evaluations).await)
            .collect()
    }

    /// One new format: its signatures (cached), verified off the async threads.
    #[allow(clippy::too_many_arguments)]
    async fn format_outcome(
        &self,
        format: SignatureFormat,
        pinned: &ImageRef,
        digest: &Digest,
        subject: &Subject,
        compiled: &CompiledPolicy,
        options: &RegistryOptions,
        credentials: &Credentials,
    ) -> Result<Passed, Failure> {
        // A turn for the fetch and the verification together: what is held in memory and the
        // CPU work under way stay bounded however many images are decided at once. Waiting
        // counts against the image's deadline; the verification job keeps the turn until it
        // ends, even if the image's deadline passed meanwhile.
        let turn = self
            .format_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| {
                Failure::with_digest(
                    ReasonClass::Timeout,
                    digest,
                    format!("{format} signatures were not evaluated: the engine is shutting down"),
                )
            })?;
        let artifact_format = match format {
            SignatureFormat::Cosign => ArtifactFormat::Cosign,
            _ => ArtifactFormat::Notation,
        };
        let key = SignatureCache::key(
            &subject.repository,
            &subject.digest,
            format.as_str(),
            options,
            credentials,
        );
        let fetch =
            self.resolver
                .signatures(pinned, subject, artifact_format, options, credentials);
        let sigs = self
            .signatures
            .fetch(key, fetch, &self.metrics)
            .await
            .map_err(|e| {
                fetch_failure(digest, &e, &format!("cannot read the {format} signatures"))
            })?;
        let found = sigs.len();
        let evaluation = self
            .evaluate(format, compiled, subject.clone(), sigs, turn)
            .await
            .unwrap_or_else(|why| Evaluation {
                passed: false,
                reason: why,
                signers: Vec::new(),
            });
        outcome_of(digest, evaluation, found)
    }

    /// Runs the format's verifier on the blocking pool (signature checks are CPU work).
    async fn evaluate(
        &self,
        format: SignatureFormat,
        compiled: &CompiledPolicy,
        subject: Subject,
        sigs: Arc<Vec<Attached>>,
        turn: OwnedSemaphorePermit,
    ) -> Result<Evaluation, String> {
        let now = self.clock.now();
        let job: Box<dyn FnOnce() -> Evaluation + Send> = match format {
            SignatureFormat::Notation => {
                let Some(policy) = compiled.formats.notation.clone() else {
                    return Err("the policy has no notation block".into());
                };
                Box::new(move || {
                    let _turn = turn;
                    notation::evaluate(&policy, &subject, &sigs, now)
                })
            }
            SignatureFormat::Cosign => {
                let Some(policy) = compiled.formats.cosign.clone() else {
                    return Err("the policy has no cosign block".into());
                };
                Box::new(move || {
                    let _turn = turn;
                    cosign::evaluate(&policy, &subject, &sigs)
                })
            }
            SignatureFormat::NotaryV1 => return Err("NotaryV1 is not a new format".into()),
        };
        tokio::task::spawn_blocking(job)
            .await
            .map_err(|e| format!("signature verification did not finish: {e}"))
    }
}

/// A failure to read from the registry, as a format's failure.
fn fetch_failure(digest: &Digest, e: &ArtifactError, what: &str) -> Failure {
    let class = match e {
        ArtifactError::Registry(RegistryError::Timeout { .. }) => ReasonClass::Timeout,
        _ => ReasonClass::RegistryError,
    };
    Failure::with_digest(class, digest, format!("{what}: {e}"))
}

/// A format's evaluation as an outcome: `Unsigned` when nothing of the format is attached,
/// `SignerThreshold` when some but too few keys signed, else `UntrustedSignature`.
fn outcome_of(digest: &Digest, e: Evaluation, found: usize) -> Result<Passed, Failure> {
    if e.passed {
        return Ok(Passed {
            digest: digest.clone(),
            signers: e.signers,
            formats: None,
        });
    }
    let class = match (found, e.signers.is_empty()) {
        (0, _) => ReasonClass::Unsigned,
        (_, false) => ReasonClass::SignerThreshold,
        _ => ReasonClass::UntrustedSignature,
    };
    Err(Failure {
        signers: e.signers,
        ..Failure::with_digest(class, digest, e.reason)
    })
}

/// Combines the outcomes (in the policy's format order) as `require` says. The combined
/// outcome carries every format's result when `listed` (the policy has `spec.signatures`); its
/// signers are those of the formats that passed. A single format's failure keeps its own
/// reason (NotaryV1's word for word), prefixed by the format's name for the new formats.
pub(super) fn combine(
    require: Require,
    listed: bool,
    outcomes: Vec<FormatOutcome>,
) -> Result<Passed, Failure> {
    let results: FormatResults = outcomes
        .iter()
        .map(|(format, outcome)| (*format, evaluation(outcome)))
        .collect();
    let shown = listed.then_some(results);
    let digest = outcomes.iter().find_map(|(_, o)| match o {
        Ok(p) => Some(p.digest.clone()),
        Err(f) => f.digest.clone(),
    });
    let mut signers: Vec<String> = Vec::new();
    for (_, o) in &outcomes {
        if let Ok(p) = o {
            for s in &p.signers {
                if !signers.contains(s) {
                    signers.push(s.clone());
                }
            }
        }
    }
    let failed: Vec<(SignatureFormat, &Failure)> = outcomes
        .iter()
        .filter_map(|(f, o)| o.as_ref().err().map(|e| (*f, e)))
        .collect();
    let any_passed = failed.len() < outcomes.len();
    let admitted = match require {
        Require::AnyOf => any_passed,
        Require::AllOf => any_passed && failed.is_empty(),
    };
    if admitted && let Some(digest) = digest.clone() {
        return Ok(Passed {
            digest,
            signers,
            formats: shown,
        });
    }
    let Some((first_format, first)) = failed.first() else {
        return Err(Failure::new(
            ReasonClass::PolicyInvalid,
            "the policy evaluates no signature format".to_owned(),
        ));
    };
    let why = if outcomes.len() == 1 {
        match first_format {
            SignatureFormat::NotaryV1 => first.why.clone(),
            other => format!("{other}: {}", first.why),
        }
    } else {
        let list: Vec<String> = failed
            .iter()
            .map(|(f, e)| format!("{f}: {}", e.why))
            .collect();
        match require {
            Require::AnyOf => format!("no signature format passed (AnyOf): {}", list.join("; ")),
            Require::AllOf => {
                let ok: Vec<&str> = outcomes
                    .iter()
                    .filter(|(_, o)| o.is_ok())
                    .map(|(f, _)| f.as_str())
                    .collect();
                let ok = if ok.is_empty() {
                    String::new()
                } else {
                    format!(" ({} passed)", ok.join(", "))
                };
                format!(
                    "not every signature format passed (AllOf){ok}: {}",
                    list.join("; ")
                )
            }
        }
    };
    Err(Failure {
        class: first.class,
        digest,
        why,
        signers,
        formats: shown,
    })
}

/// One format's result as shown to users.
fn evaluation(outcome: &Result<Passed, Failure>) -> Evaluation {
    match outcome {
        Ok(p) => Evaluation {
            passed: true,
            reason: format!("{} signed by {}", p.digest, p.signers.join(", ")),
            signers: p.signers.clone(),
        },
        Err(f) => Evaluation {
            passed: false,
            reason: f.why.clone(),
            signers: f.signers.clone(),
        },
    }
}
