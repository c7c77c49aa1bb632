//! Value types that parse their input: once a value of one of these types exists, it
//! is valid. Handlers parse request fields into them and collect every failure into
//! one `422 validation_failed` with an entry per field.

pub mod email;
pub mod name;
pub mod password;

pub use email::Email;
pub use name::Name;
pub use password::Password;

use crate::error::{Error, FieldError};

/// Collects field errors while parsing a request body, then hands back every parsed
/// value at once, or one `422` naming every field that failed:
///
/// ```ignore
/// let mut fields = Fields::new();
/// let name = fields.check("name", Name::parse(&body.name));
/// let code = fields.check_optional("code", body.code.as_deref(), parse_code);
/// let (name, code) = fields.finish((name, code))?;
/// ```
#[derive(Default)]
pub struct Fields {
    errors: Vec<FieldError>,
}

/// A value that [`Fields`] checked: `None` only when its failure was recorded.
pub struct Checked<T>(Option<T>);

impl Fields {
    pub fn new() -> Self {
        Fields::default()
    }

    /// Keeps the value, or records the failure under `field`.
    pub fn check<T>(&mut self, field: &str, parsed: Result<T, String>) -> Checked<T> {
        match parsed {
            Ok(value) => Checked(Some(value)),
            Err(message) => {
                self.errors.push(FieldError::new(field, message));
                Checked(None)
            }
        }
    }

    /// An optional field: absent stays `None`; present, it is parsed like [`check`].
    ///
    /// [`check`]: Fields::check
    pub fn check_optional<I, T>(
        &mut self,
        field: &str,
        input: Option<I>,
        parse: impl FnOnce(I) -> Result<T, String>,
    ) -> Checked<Option<T>> {
        match input {
            None => Checked(Some(None)),
            Some(input) => {
                let Checked(value) = self.check(field, parse(input));
                Checked(value.map(Some))
            }
        }
    }

    /// Records a failure that is not the parse of one value (a rule across fields).
    pub fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// The parsed values (one [`Checked`] or a tuple of them), or every failure.
    pub fn finish<V: CheckedValues>(self, values: V) -> Result<V::Values, Error> {
        if !self.errors.is_empty() {
            return Err(Error::Validation(self.errors));
        }
        values.values().ok_or_else(|| {
            Error::Internal(anyhow::anyhow!(
                "a checked field has no value but no failure was recorded"
            ))
        })
    }
}

/// What [`Fields::finish`] unwraps: a [`Checked`] value or a tuple of them.
pub trait CheckedValues {
    type Values;
    fn values(self) -> Option<Self::Values>;
}

impl<T> CheckedValues for Checked<T> {
    type Values = T;
    fn values(self) -> Option<T> {
        self.0
    }
}

impl CheckedValues for () {
    type Values = ();
    fn values(self) -> Option<()> {
        Some(())
    }
}

macro_rules! checked_tuple {
    ($($name:ident),+) => {
        impl<$($name),+> CheckedValues for ($(Checked<$name>,)+) {
            type Values = ($($name,)+);
            #[allow(non_snake_case)]
            fn values(self) -> Option<Self::Values> {
                let ($($name,)+) = self;
                Some(($($name.0?,)+))
            }
        }
    };
}
checked_tuple!(A, B);
checked_tuple!(A, B, C);
checked_tuple!(A, B, C, D);
checked_tuple!(A, B, C, D, E);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_hands_back_every_value_when_all_parsed() {
        let mut fields = Fields::new();
        let a = fields.check("a", Ok::<_, String>(1));
        let b = fields.check_optional("b", None::<&str>, |_| Ok::<u8, String>(2));
        assert_eq!(fields.finish((a, b)).ok(), Some((1, None)));
    }

    #[test]
    fn finish_names_every_field_that_failed() {
        let mut fields = Fields::new();
        let a = fields.check("a", Err::<u8, _>("bad".into()));
        let b = fields.check_optional("b", Some("x"), |_| Err::<u8, _>("worse".to_string()));
        match fields.finish((a, b)) {
            Err(Error::Validation(errors)) => assert_eq!(
                errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(),
                ["a", "b"]
            ),
            other => panic!("{:?}", other.err()),
        }
    }
}
