//! `AppError`: the only error type that crosses the network.
//!
//! Small and stable on purpose. Internals (database errors, upstream failures) never
//! reach the browser: on the server they are logged with an incident id and become
//! `Internal { incident_id }`, which a person can quote to an administrator.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// A problem with one input field, shown next to that field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AppError {
    #[error("Please sign in to continue.")]
    Unauthenticated,
    #[error("Your role does not allow this.")]
    Forbidden,
    #[error("{what} was not found.")]
    NotFound { what: String },
    #[error("Some fields need attention.")]
    Validation { fields: Vec<FieldError> },
    #[error("{message}")]
    Conflict { message: String },
    #[error("Too many attempts. Try again in {retry_after_secs} s.")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("Apple is not answering right now.")]
    UpstreamUnavailable { retry_after_secs: Option<u64> },
    #[error("Something went wrong on the server (incident {incident_id}).")]
    Internal { incident_id: String },
    /// The request never reached our code: it could not be sent, encoded or routed.
    #[error("The request failed: {message}")]
    Request { message: String },
}

impl AppError {
    /// The HTTP status a page showing this error is served with.
    pub fn status(&self) -> u16 {
        match self {
            Self::Unauthenticated => 401,
            Self::Forbidden => 403,
            Self::NotFound { .. } => 404,
            Self::Validation { .. } => 422,
            Self::Conflict { .. } => 409,
            Self::TooManyRequests { .. } => 429,
            Self::UpstreamUnavailable { .. } => 503,
            Self::Internal { .. } => 500,
            Self::Request { .. } => 400,
        }
    }

    /// A short heading for error pages.
    pub fn title(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "Sign-in required",
            Self::Forbidden => "Not allowed",
            Self::NotFound { .. } => "Not found",
            Self::Validation { .. } => "Check your input",
            Self::Conflict { .. } => "Conflict",
            Self::TooManyRequests { .. } => "Too many attempts",
            Self::UpstreamUnavailable { .. } => "Apple is unavailable",
            Self::Internal { .. } => "Server error",
            Self::Request { .. } => "Request failed",
        }
    }

    /// The message for one input field, when this is a validation error about it.
    pub fn field_message(&self, field: &str) -> Option<String> {
        match self {
            Self::Validation { fields } => fields
                .iter()
                .find(|f| f.field == field)
                .map(|f| f.message.clone()),
            _ => None,
        }
    }

    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        Self::Validation {
            fields: vec![FieldError {
                field: field.to_owned(),
                message: message.into(),
            }],
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        Self::Request {
            message: value.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_travel_as_snake_case_tagged_json() {
        let json = serde_json_lite(&AppError::Internal {
            incident_id: "abc".into(),
        });
        assert_eq!(json, r#"{"kind":"internal","incident_id":"abc"}"#);
    }

    #[test]
    fn every_error_maps_to_an_error_status() {
        let all = [
            AppError::Unauthenticated,
            AppError::Forbidden,
            AppError::NotFound { what: "x".into() },
            AppError::validation("f", "m"),
            AppError::Conflict {
                message: "m".into(),
            },
            AppError::UpstreamUnavailable {
                retry_after_secs: None,
            },
            AppError::TooManyRequests {
                retry_after_secs: 30,
            },
            AppError::Internal {
                incident_id: "i".into(),
            },
            AppError::Request {
                message: "m".into(),
            },
        ];
        for e in all {
            assert!((400..600).contains(&e.status()), "{e:?}");
        }
    }

    fn serde_json_lite(e: &AppError) -> String {
        String::from_utf8(e.ser().to_vec()).unwrap()
    }
}
