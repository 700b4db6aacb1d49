//! Why a message failed for one recipient, as its sender is told: a number and a name, in the
//! form of the MedAllies seed (`9002: ERROR=NoTrustedRecipients`). The cause behind a code
//! (an endpoint's HTTP error, a peer's SMTP reply) names the receiver's systems, so it stays
//! with operators; `docs/api.md` holds the table.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureCode {
    /// The address is at a domain hosted here, but no such address exists.
    RecipientUnknown,
    /// No certificate of the recipient is trusted (or none was found): the seed's own code.
    NoTrustedRecipients,
    /// The address exists here but is disabled, or its organization is not Activated.
    RecipientDisabled,
    /// The receiving system did not accept the message within the retry schedule.
    DeliveryFailed,
    /// No final status (dispatched or failed) arrived within the timeout.
    NoFinalStatus,
    /// The receiving side refused the message (a failed MDN, a permanent SMTP error).
    RecipientRejected,
    /// The receiving side refused the message for its size.
    MessageTooLarge,
    /// The message waited in the recipient's mailbox until it expired, never acknowledged.
    NotRetrieved,
    /// The message could not be read back for delivery: ours to fix.
    InternalError,
}

impl FailureCode {
    pub const ALL: [FailureCode; 9] = [
        FailureCode::RecipientUnknown,
        FailureCode::NoTrustedRecipients,
        FailureCode::RecipientDisabled,
        FailureCode::DeliveryFailed,
        FailureCode::NoFinalStatus,
        FailureCode::RecipientRejected,
        FailureCode::MessageTooLarge,
        FailureCode::NotRetrieved,
        FailureCode::InternalError,
    ];

    pub fn number(self) -> u16 {
        match self {
            FailureCode::RecipientUnknown => 9001,
            FailureCode::NoTrustedRecipients => 9002,
            FailureCode::RecipientDisabled => 9003,
            FailureCode::DeliveryFailed => 9004,
            FailureCode::NoFinalStatus => 9005,
            FailureCode::RecipientRejected => 9006,
            FailureCode::MessageTooLarge => 9007,
            FailureCode::NotRetrieved => 9008,
            FailureCode::InternalError => 9099,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FailureCode::RecipientUnknown => "RecipientUnknown",
            FailureCode::NoTrustedRecipients => "NoTrustedRecipients",
            FailureCode::RecipientDisabled => "RecipientDisabled",
            FailureCode::DeliveryFailed => "DeliveryFailed",
            FailureCode::NoFinalStatus => "NoFinalStatus",
            FailureCode::RecipientRejected => "RecipientRejected",
            FailureCode::MessageTooLarge => "MessageTooLarge",
            FailureCode::NotRetrieved => "NotRetrieved",
            FailureCode::InternalError => "InternalError",
        }
    }
}

/// What the sender reads, in the notification's `Description` and the status's
/// `failureReason`: `9001: ERROR=RecipientUnknown`.
impl fmt::Display for FailureCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ERROR={}", self.number(), self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_render_like_the_seed() {
        let numbers: std::collections::HashSet<u16> =
            FailureCode::ALL.iter().map(|c| c.number()).collect();
        assert_eq!(numbers.len(), FailureCode::ALL.len());
        assert_eq!(
            FailureCode::NoTrustedRecipients.to_string(),
            "9002: ERROR=NoTrustedRecipients"
        );
    }
}
