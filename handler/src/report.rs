//! What a broadcast or send did: the counts a caller gets back.

use serde::Serialize;

/// What a broadcast or send did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DeliveryReport {
    /// Posts the endpoint accepted.
    pub delivered: u64,
    /// Connections that answered 410 Gone; their rows were deleted.
    pub gone: u64,
    /// Posts that failed otherwise (throttled, forbidden, network...).
    pub failed: u64,
    /// Up to [`DeliveryReport::MAX_ERRORS`] descriptions of the failures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl DeliveryReport {
    pub const MAX_ERRORS: usize = 10;

    pub(crate) fn note_error(&mut self, message: String) {
        if self.errors.len() < Self::MAX_ERRORS {
            self.errors.push(message);
        }
    }
}
