use std::fmt;

/// The longest address (RFC 5321's path limit, less the angle brackets).
pub const MAX_CHARS: usize = 254;

/// An email address, normalized: trimmed and lower-cased, so that one mailbox is one
/// account whatever the caller typed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Email, String> {
        let email = input.trim().to_lowercase();
        if email.is_empty() {
            return Err("is required".into());
        }
        if email.len() > MAX_CHARS {
            return Err(format!("is longer than {MAX_CHARS} characters"));
        }
        let Some((local, domain)) = email.rsplit_once('@') else {
            return Err("is not an email address".into());
        };
        let plain = |part: &str| {
            !part.is_empty()
                && !part.starts_with('.')
                && !part.ends_with('.')
                && !part.contains("..")
                && part
                    .chars()
                    .all(|c| !c.is_whitespace() && !c.is_control() && c != '@')
        };
        if local.len() > 64 || !plain(local) || !plain(domain) || !domain.contains('.') {
            return Err("is not an email address".into());
        }
        Ok(Email(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Email;

    #[test]
    fn an_email_is_trimmed_and_lower_cased() {
        assert_eq!(
            Email::parse("  Alice@Example.COM ").unwrap().as_str(),
            "alice@example.com"
        );
    }

    #[test]
    fn strings_that_are_not_addresses_are_refused() {
        for bad in [
            "",
            "   ",
            "alice",
            "@example.com",
            "alice@",
            "alice@localhost",
            "a b@example.com",
            "a@b@c.com",
            "a@.example.com",
            "a@example..com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn an_overlong_address_is_refused() {
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }
}
