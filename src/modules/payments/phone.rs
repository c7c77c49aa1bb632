//! Kenyan mobile numbers as Daraja takes them: `2547XXXXXXXX` or `2541XXXXXXXX`.

/// `07XXXXXXXX`, `01XXXXXXXX`, `+2547…`, `2547…` (spaces and dashes ignored) as
/// `2547XXXXXXXX` / `2541XXXXXXXX`; anything else `None`.
pub fn normalise(input: &str) -> Option<String> {
    let compact: String = input.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let rest = if let Some(rest) = compact.strip_prefix("+254") {
        rest
    } else if let Some(rest) = compact.strip_prefix("254") {
        rest
    } else {
        compact.strip_prefix('0')?
    };
    let valid = rest.len() == 9
        && rest.chars().all(|c| c.is_ascii_digit())
        && (rest.starts_with('7') || rest.starts_with('1'));
    valid.then(|| format!("254{rest}"))
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn the_four_accepted_forms_become_2547_or_2541() {
        assert_eq!(normalise("0712345678").as_deref(), Some("254712345678"));
        assert_eq!(normalise("0112345678").as_deref(), Some("254112345678"));
        assert_eq!(normalise("+254712345678").as_deref(), Some("254712345678"));
        assert_eq!(normalise("254112345678").as_deref(), Some("254112345678"));
        assert_eq!(normalise("0712 345-678").as_deref(), Some("254712345678"));
    }

    #[test]
    fn other_numbers_are_refused() {
        for bad in [
            "",
            "0812345678",
            "071234567",
            "07123456789",
            "+255712345678",
            "712345678",
            "07123456a8",
            "+254 0712345678",
            "٠٧١٢٣٤٥٦٧٨",
        ] {
            assert_eq!(normalise(bad), None, "{bad}");
        }
    }
}
