//! What the observers of decisions read of one. Metrics, the audit log and Events sit below the
//! engine: they take any [`DecisionRecord`] (the engine's `decision::Decision` is one), so they
//! import nothing of `decision` and the layers point one way.

/// One image decision as metrics, audit lines and Events see it.
pub trait DecisionRecord {
    /// The image as written in the workload.
    fn image(&self) -> &str;
    /// The normalised reference (`None` when the image does not parse).
    fn reference(&self) -> Option<&str>;
    /// The digest that was verified (`sha256:...`), when it was resolved.
    fn digest(&self) -> Option<&str>;
    /// The deciding policy (`namespace/name` or `name`), `None` for the global default.
    fn policy(&self) -> Option<&str>;
    /// Whether the image is admitted (Warn and Audit failures are admitted).
    fn allowed(&self) -> bool;
    /// Whether every check passed (false for a Warn/Audit admission of a failing image).
    fn verified(&self) -> bool;
    /// The verdict word: `ADMITTED`, `REJECTED`, `WARNED` or `AUDITED`.
    fn verdict(&self) -> &'static str;
    /// The verdict as a metric label: `admitted`, `rejected`, `warned` or `audited`.
    fn result(&self) -> &'static str;
    /// The reason class as a metric label (`verified`, `unsigned`, `digest_mismatch`, ...).
    fn class(&self) -> &'static str;
    /// Whether the global default action decided (no policy matched).
    fn is_default_action(&self) -> bool;
    /// Why, in one line.
    fn reason(&self) -> &str;
    /// The signer roles that counted (`targets/alice`, or `targets/releases` / `targets`).
    fn signers(&self) -> &[String];
    /// Calls `each` with every signature format evaluated for this image (its policy-file name,
    /// such as `Notation`) and whether it passed; nothing when only Notary v1 was consulted.
    fn each_format(&self, each: &mut dyn FnMut(&'static str, bool)) {
        let _ = each;
    }
}
