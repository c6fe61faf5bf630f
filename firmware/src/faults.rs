//! Runtime errors as protocol fault codes.

use sturdy_protocol::ModelFault;
use sturdy_runtime::Error;

/// The protocol's name for a runtime error (payloads stay on the board's log).
pub fn model_fault(e: &Error) -> ModelFault {
    match e {
        Error::Truncated { .. } => ModelFault::Truncated,
        Error::BadMagic => ModelFault::BadMagic,
        Error::UnsupportedVersion { .. } => ModelFault::UnsupportedVersion,
        Error::HeaderCrc { .. } => ModelFault::HeaderCrc,
        Error::Misaligned => ModelFault::Misaligned,
        Error::BadSection { .. } => ModelFault::BadSection,
        Error::MissingSection { .. } => ModelFault::MissingSection,
        Error::BadTensor { .. } => ModelFault::BadTensor,
        Error::BadOp { .. } => ModelFault::BadOp,
        Error::UnknownOp { .. } => ModelFault::UnknownOp,
        Error::ShapeMismatch => ModelFault::ShapeMismatch,
        Error::BadRequant => ModelFault::BadRequant,
        Error::ArenaTooSmall { .. } => ModelFault::ArenaTooSmall,
        Error::BadIoLength { .. } => ModelFault::BadIoLength,
        // A variant added to the runtime after this protocol version.
        #[allow(unreachable_patterns)]
        _ => ModelFault::Other,
    }
}
