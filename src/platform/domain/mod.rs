//! Value types that parse their input: once a value of one of these types exists, it
//! is valid. Handlers parse request fields into them and collect every failure into
//! one `422 validation_failed` with an entry per field.

mod email;
mod name;
mod password;

pub use email::Email;
pub use name::Name;
pub use password::Password;

use crate::error::{Error, FieldError};

/// Collects field errors while parsing a request body.
#[derive(Default)]
pub struct Fields {
    errors: Vec<FieldError>,
}

impl Fields {
    pub fn new() -> Self {
        Fields::default()
    }

    /// Keeps the value, or records the failure under `field`.
    pub fn check<T>(&mut self, field: &str, parsed: Result<T, String>) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(message) => {
                self.errors.push(FieldError::new(field, message));
                None
            }
        }
    }

    pub fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// `Ok` when every field parsed.
    pub fn finish(self) -> Result<(), Error> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(self.errors))
        }
    }
}
