//! Runtime errors as protocol fault codes.

use sturdy_protocol::{ModelFault, ProtectFault};
use sturdy_runtime::protect::ProtectError;
use sturdy_runtime::Error;

/// The protocol's name for a protected-load error (counts stay in the health record).
pub fn protect_fault(e: &ProtectError) -> ProtectFault {
    match e {
        ProtectError::Model(e) => ProtectFault::Model(model_fault(e)),
        ProtectError::BadProtection => ProtectFault::BadProtection,
        ProtectError::WrongKey => ProtectFault::WrongKey,
        ProtectError::RamTooSmall { .. } => ProtectFault::RamTooSmall,
        ProtectError::Uncorrectable { .. } => ProtectFault::Uncorrectable,
        ProtectError::TagMismatch { .. } => ProtectFault::TagMismatch,
        #[allow(unreachable_patterns)]
        _ => ProtectFault::Other,
    }
}

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
        Error::UnknownDomain { .. } => ModelFault::UnknownDomain,
        Error::BadDrift => ModelFault::BadDrift,
        Error::NoDriftMonitor => ModelFault::NoDriftMonitor,
        Error::KernelNotLinked { .. } => ModelFault::KernelNotLinked,
        // A variant added to the runtime after this protocol version.
        #[allow(unreachable_patterns)]
        _ => ModelFault::Other,
    }
}

/// The fault's name, for the log.
pub fn name(fault: &ModelFault) -> &'static str {
    match fault {
        ModelFault::Truncated => "truncated",
        ModelFault::BadMagic => "bad magic",
        ModelFault::UnsupportedVersion => "unsupported format version",
        ModelFault::HeaderCrc => "header CRC mismatch",
        ModelFault::Misaligned => "misaligned",
        ModelFault::BadSection => "bad section",
        ModelFault::MissingSection => "missing section",
        ModelFault::BadTensor => "bad tensor",
        ModelFault::BadOp => "bad op",
        ModelFault::UnknownOp => "unknown op",
        ModelFault::ShapeMismatch => "shape mismatch",
        ModelFault::BadRequant => "bad requantization",
        ModelFault::ArenaTooSmall => "arena too small",
        ModelFault::BadIoLength => "bad input/output length",
        ModelFault::UnknownDomain => "unknown input domain",
        ModelFault::BadDrift => "malformed drift settings",
        ModelFault::NoDriftMonitor => "no drift monitor in the artifact",
        ModelFault::KernelNotLinked => "kernel not linked (firmware built for another artifact)",
        ModelFault::Other => "other",
    }
}
