use super::Email;

/// A new password that meets the policy: 8 to 128 characters, not the account's email.
/// The upper bound is checked before any hashing, so an enormous password is a quick
/// 422, not a slow hash.
pub struct Password(String);

pub const MIN_CHARS: usize = 8;
pub const MAX_CHARS: usize = 128;

impl Password {
    pub fn parse(input: &str, email: Option<&Email>) -> Result<Password, String> {
        let chars = input.chars().count();
        if chars < MIN_CHARS {
            return Err(format!("must be at least {MIN_CHARS} characters"));
        }
        if chars > MAX_CHARS {
            return Err(format!("must be at most {MAX_CHARS} characters"));
        }
        if email.is_some_and(|email| input.trim().to_lowercase() == email.as_str()) {
            return Err("must not be the email address".into());
        }
        Ok(Password(input.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_of_8_to_128_characters_is_accepted() {
        assert!(Password::parse("12345678", None).is_ok());
        assert!(Password::parse(&"é".repeat(128), None).is_ok());
    }

    #[test]
    fn a_password_outside_8_to_128_characters_is_refused() {
        assert!(Password::parse("1234567", None).is_err());
        assert!(Password::parse(&"x".repeat(129), None).is_err());
    }

    #[test]
    fn a_password_equal_to_the_email_is_refused() {
        let email = Email::parse("alice@example.com").unwrap();
        assert!(Password::parse("Alice@Example.com", Some(&email)).is_err());
    }
}
