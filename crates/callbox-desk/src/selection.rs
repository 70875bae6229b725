//! Finding the phone number in text the agent selected or copied (the global dial shortcut),
//! whatever its formatting: `+1 (415) 555-0100`, `0049 30 1234567`, `415.555.0100`,
//! `tel:+14155550100`.

/// The first phone number in `text`, as digits with a leading `+` when it had one (or `00`,
/// which becomes `+`). `None` when there is nothing with at least 3 digits.
pub fn phone_number_in(text: &str) -> Option<String> {
    let text = text.trim();
    let text = text
        .strip_prefix("tel:")
        .or_else(|| text.strip_prefix("callto:"))
        .or_else(|| text.strip_prefix("sip:"))
        .unwrap_or(text);
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let starts = chars[i].is_ascii_digit()
            || (chars[i] == '+' && chars.get(i + 1).is_some_and(|c| c.is_ascii_digit()))
            || (chars[i] == '(' && chars.get(i + 1).is_some_and(|c| c.is_ascii_digit()));
        if !starts {
            i += 1;
            continue;
        }
        let mut digits = String::new();
        let mut plus = chars[i] == '+';
        let mut j = i;
        let mut gap = 0;
        while j < chars.len() {
            let c = chars[j];
            if c.is_ascii_digit() {
                digits.push(c);
                gap = 0;
            } else if matches!(c, ' ' | '-' | '.' | '(' | ')' | '/' | '\u{a0}')
                || (c == '+' && digits.is_empty())
            {
                gap += 1;
                if gap > 2 {
                    break;
                }
            } else {
                break;
            }
            j += 1;
        }
        if digits.len() >= 3 && digits.len() <= 15 + 2 {
            if !plus && digits.starts_with("00") && digits.len() > 4 {
                digits.drain(..2);
                plus = true;
            }
            return Some(if plus { format!("+{digits}") } else { digits });
        }
        i = j.max(i + 1);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatted_numbers_are_found() {
        let cases = [
            ("+1 (415) 555-0100", Some("+14155550100")),
            ("0049 30 1234567", Some("+49301234567")),
            ("Call me at 415.555.0100 today", Some("4155550100")),
            ("tel:+14155550100", Some("+14155550100")),
            ("(030) 123 45 67", Some("0301234567")),
            ("ext 1001", Some("1001")),
            ("+44 20 7946 0958\n", Some("+442079460958")),
            ("no number here", None),
            ("12", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(phone_number_in(text).as_deref(), expected, "{text:?}");
        }
    }
}
