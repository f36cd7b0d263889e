//! weft's errors as the protocol sends them (ErrorResponse's fields).

use pgwire::error::{ErrorInfo, PgWireError};

use crate::error::SqlError;

/// An error as pgwire sends it.
pub trait IntoPgWire {
    fn to_error_info(&self) -> ErrorInfo;
    fn into_pgwire(self) -> PgWireError;
}

impl IntoPgWire for SqlError {
    fn to_error_info(&self) -> ErrorInfo {
        let mut info = ErrorInfo::new(
            if self.fatal { "FATAL" } else { "ERROR" }.into(),
            self.code.into(),
            self.message.clone(),
        );
        info.detail = self.detail.clone();
        info.hint = self.hint.clone();
        info
    }

    fn into_pgwire(self) -> PgWireError {
        PgWireError::UserError(Box::new(self.to_error_info()))
    }
}
