//! Strict text for request bodies: only a JSON string parses. poem-openapi's `String`
//! turns a number or a boolean into its text (`{"name": 5}` would name a store "5");
//! [`Text`] refuses them, and [`super::json::JsonBody`] then names the field in a 422.
//!
//! The kind parameter only documents: it puts `format`, `minLength` and `maxLength` in
//! the schema of the field (`EmailText`, `NameText`, `PasswordText`, `Text<Bounded<1,
//! 64>>`). Checking them stays with the domain parsers (`platform::domain`) behind
//! `Fields`, so that every rule answers with the same 422 `validation_failed`.

use std::{borrow::Cow, fmt, marker::PhantomData, ops::Deref};

use poem_openapi::{
    registry::{MetaSchema, MetaSchemaRef},
    types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type},
};
use serde_json::Value;

use crate::platform::domain::password;

/// What the schema of a [`Text`] says beyond `type: string`.
pub trait TextKind: 'static {
    const FORMAT: Option<&'static str> = None;
    const MIN_LENGTH: Option<usize> = None;
    const MAX_LENGTH: Option<usize> = None;
    /// A closed set of values, documented as the schema's `enum` (the parse still
    /// takes any string, and the service says which are known).
    const ENUM: &'static [&'static str] = &[];
}

/// A kind whose values a reply may write out (`Serialize`): every kind but the
/// passwords, so that no `Text` of a password can be serialized by mistake (into a
/// reply, a log line or an audit event's details).
pub trait PublicKind: TextKind {}

/// Any string.
pub struct Plain;
impl TextKind for Plain {}
impl PublicKind for Plain {}

/// An email address (`Email::parse` checks it).
pub struct EmailFormat;
impl TextKind for EmailFormat {
    const FORMAT: Option<&'static str> = Some("email");
    const MAX_LENGTH: Option<usize> = Some(crate::platform::domain::email::MAX_CHARS);
}
impl PublicKind for EmailFormat {}

/// A person's, tenant's, store's or role's name (`Name::parse` checks it).
pub struct NameFormat;
impl TextKind for NameFormat {
    const MIN_LENGTH: Option<usize> = Some(1);
    const MAX_LENGTH: Option<usize> = Some(crate::platform::domain::name::MAX_CHARS);
}
impl PublicKind for NameFormat {}

/// A new password (`Password::parse` checks it).
pub struct PasswordFormat;
impl TextKind for PasswordFormat {
    const FORMAT: Option<&'static str> = Some("password");
    const MIN_LENGTH: Option<usize> = Some(password::MIN_CHARS);
    const MAX_LENGTH: Option<usize> = Some(password::MAX_CHARS);
}

/// A password that is checked, not chosen (login, the current password): any length
/// is compared, so the schema says only `format: password`.
pub struct SecretFormat;
impl TextKind for SecretFormat {
    const FORMAT: Option<&'static str> = Some("password");
}

/// `MIN` to `MAX` characters (a `MIN` of 0 is left out of the schema).
pub struct Bounded<const MIN: usize, const MAX: usize>;
impl<const MIN: usize, const MAX: usize> TextKind for Bounded<MIN, MAX> {
    const MIN_LENGTH: Option<usize> = if MIN == 0 { None } else { Some(MIN) };
    const MAX_LENGTH: Option<usize> = Some(MAX);
}
impl<const MIN: usize, const MAX: usize> PublicKind for Bounded<MIN, MAX> {}

/// A JSON string, and nothing else, of the kind `K` (see the module's comment).
pub struct Text<K: TextKind = Plain> {
    value: String,
    kind: PhantomData<fn() -> K>,
}

pub type EmailText = Text<EmailFormat>;
pub type NameText = Text<NameFormat>;
pub type PasswordText = Text<PasswordFormat>;
pub type SecretText = Text<SecretFormat>;

impl<K: TextKind> Text<K> {
    pub fn new(value: impl Into<String>) -> Self {
        Text {
            value: value.into(),
            kind: PhantomData,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.value
    }
}

impl<K: TextKind> Deref for Text<K> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.value
    }
}

impl<K: TextKind> AsRef<str> for Text<K> {
    fn as_ref(&self) -> &str {
        &self.value
    }
}

impl<K: TextKind> From<String> for Text<K> {
    fn from(value: String) -> Self {
        Text::new(value)
    }
}

impl<K: TextKind> From<&str> for Text<K> {
    fn from(value: &str) -> Self {
        Text::new(value)
    }
}

impl<K: TextKind> Clone for Text<K> {
    fn clone(&self) -> Self {
        Text::new(self.value.clone())
    }
}

impl<K: TextKind> PartialEq for Text<K> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

/// Never prints the value: a `Text` may be a password.
impl<K: TextKind> fmt::Debug for Text<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Text({} chars)", self.value.chars().count())
    }
}

impl<K: TextKind> Type for Text<K> {
    const IS_REQUIRED: bool = true;

    type RawValueType = String;

    type RawElementValueType = String;

    fn name() -> Cow<'static, str> {
        "string".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        let mut schema = MetaSchema::new("string");
        schema.format = K::FORMAT;
        schema.min_length = K::MIN_LENGTH;
        schema.max_length = K::MAX_LENGTH;
        schema.enum_items = K::ENUM.iter().map(|&value| Value::from(value)).collect();
        MetaSchemaRef::Inline(Box::new(schema))
    }

    fn as_raw_value(&self) -> Option<&String> {
        Some(&self.value)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a String> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }

    fn is_empty(&self) -> bool {
        self.value.is_empty()
    }
}

impl<K: TextKind> ParseFromJSON for Text<K> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(value)) => Ok(Text::new(value)),
            Some(other) => Err(ParseError::expected_type(other)),
            None => Err(ParseError::expected_input()),
        }
    }
}

impl<K: TextKind> ToJSON for Text<K> {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.value.clone()))
    }
}

/// As its `ToJSON`: the string (a reply's field, `super::json::JsonBody`); never a
/// password's (see [`PublicKind`]).
impl<K: PublicKind> serde::Serialize for Text<K> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_json_string_is_text() {
        assert_eq!(
            Text::<Plain>::parse_from_json(Some(Value::from("5")))
                .ok()
                .map(|t| t.value),
            Some("5".to_string())
        );
        for other in [
            Value::from(5),
            Value::from(true),
            Value::Null,
            Value::from(1.5),
        ] {
            assert!(Text::<Plain>::parse_from_json(Some(other)).is_err());
        }
        assert!(Text::<Plain>::parse_from_json(None).is_err());
    }

    #[test]
    fn the_kind_documents_format_and_lengths() {
        let MetaSchemaRef::Inline(schema) = PasswordText::schema_ref() else {
            panic!("a text's schema is inline");
        };
        assert_eq!(
            (
                schema.ty,
                schema.format,
                schema.min_length,
                schema.max_length
            ),
            ("string", Some("password"), Some(8), Some(128))
        );
        let MetaSchemaRef::Inline(schema) = Text::<Bounded<0, 500>>::schema_ref() else {
            panic!("a text's schema is inline");
        };
        assert_eq!((schema.min_length, schema.max_length), (None, Some(500)));
    }
}
