use serde::{Deserialize, Serialize};

use crate::FieldError;

/// What went wrong, as the caller (a browser, an API client) may know it. Internal details never
/// travel: an internal error carries only a reference to find the full story in the server's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum AppError {
    #[error("you are not logged in, or your session has ended")]
    Unauthenticated,
    #[error("your role does not allow this")]
    Forbidden,
    #[error("choose your own password first")]
    PasswordChangeRequired,
    #[error("not found")]
    NotFound,
    #[error("some fields are not valid: {errors:?}")]
    Invalid { errors: Vec<FieldError> },
    #[error("wrong email or password")]
    BadCredentials,
    #[error("too many failed attempts; try again in {retry_after_secs} s")]
    TooManyAttempts { retry_after_secs: u64, locked: bool },
    #[error("Balas is already set up")]
    AlreadySetUp,
    #[error("Balas is not set up yet")]
    NotSetUp,
    #[error("a workspace needs at least one admin")]
    LastAdmin,
    #[error("this invite link is not valid: it was used already or has expired")]
    InviteInvalid,
    #[error("something went wrong on the server (reference {reference})")]
    Internal { reference: String },
    #[error("could not reach the server: {message}")]
    Transport { message: String },
}

impl AppError {
    pub fn invalid(error: FieldError) -> Self {
        AppError::Invalid { errors: vec![error] }
    }

    /// The HTTP status this error is sent with.
    pub fn status(&self) -> u16 {
        match self {
            AppError::Unauthenticated | AppError::BadCredentials => 401,
            AppError::Forbidden | AppError::PasswordChangeRequired => 403,
            AppError::NotFound | AppError::InviteInvalid => 404,
            AppError::AlreadySetUp | AppError::NotSetUp | AppError::LastAdmin => 409,
            AppError::Invalid { .. } => 422,
            AppError::TooManyAttempts { .. } => 429,
            AppError::Internal { .. } => 500,
            AppError::Transport { .. } => 400,
        }
    }

    /// The problems reported against one field, for showing next to it.
    pub fn field_errors(&self, field: crate::Field) -> impl Iterator<Item = &FieldError> {
        let all: &[FieldError] = match self {
            AppError::Invalid { errors } => errors,
            _ => &[],
        };
        all.iter().filter(move |e| e.field == field)
    }
}

impl From<FieldError> for AppError {
    fn from(error: FieldError) -> Self {
        AppError::invalid(error)
    }
}

#[cfg(feature = "server-fn")]
impl server_fn::error::FromServerFnError for AppError {
    type Encoder = server_fn::codec::JsonEncoding;

    fn from_server_fn_error(error: server_fn::error::ServerFnErrorErr) -> Self {
        AppError::Transport { message: error.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Field, Issue};

    #[test]
    fn errors_travel_as_tagged_json() {
        let error = AppError::invalid(FieldError::new(Field::Email, Issue::TooLong { max: 254 }));
        let json = serde_json::to_value(&error).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"error": "invalid", "errors": [{"field": "email", "issue": {"kind": "too_long", "max": 254}}]})
        );
        assert_eq!(serde_json::from_value::<AppError>(json).unwrap(), error);
        let locked = AppError::TooManyAttempts { retry_after_secs: 3, locked: true };
        assert_eq!(serde_json::from_value::<AppError>(serde_json::to_value(&locked).unwrap()).unwrap(), locked);
    }
}
