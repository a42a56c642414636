//! [`Decision`] as the [`DecisionRecord`] that metrics, audit lines and Events read.

use crate::record::DecisionRecord;

use super::{Decision, ReasonClass};

impl DecisionRecord for Decision {
    fn image(&self) -> &str {
        &self.image
    }

    fn reference(&self) -> Option<&str> {
        self.reference.as_deref()
    }

    fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    fn policy(&self) -> Option<&str> {
        self.policy.as_deref()
    }

    fn allowed(&self) -> bool {
        self.allowed
    }

    fn verified(&self) -> bool {
        self.verified
    }

    fn verdict(&self) -> &'static str {
        Decision::verdict(self)
    }

    fn result(&self) -> &'static str {
        Decision::result(self)
    }

    fn class(&self) -> &'static str {
        Decision::class(self)
    }

    fn is_default_action(&self) -> bool {
        self.reason_class == ReasonClass::DefaultAction
    }

    fn reason(&self) -> &str {
        &self.reason
    }

    fn signers(&self) -> &[String] {
        &self.signers
    }

    fn each_format(&self, each: &mut dyn FnMut(&'static str, bool)) {
        for (format, evaluation) in self.formats.iter().flatten() {
            each(format.as_str(), evaluation.passed);
        }
    }
}
