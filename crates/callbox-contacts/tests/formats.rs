//! Real-world ways people write numbers, per country: national, international with `+` and
//! with `00`, spaces, dots, dashes, slashes, parentheses, `(0)`, extensions. Each must read
//! to the same E.164 number; what is not a number must be classified, not guessed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use callbox_contacts::phone::{NumberKind, NumberRules, normalize};

fn rules(country: &str) -> NumberRules {
    NumberRules::with_country(Some(country.parse().expect(country)))
}

/// (default country, E.164, ways it is written)
const SAME_NUMBER: &[(&str, &str, &[&str])] = &[
    (
        "US",
        "+16502530000",
        &[
            "(650) 253-0000",
            "650-253-0000",
            "650.253.0000",
            "650 253 0000",
            "6502530000",
            "1-650-253-0000",
            "1 (650) 253-0000",
            "+1 650 253 0000",
            "+1 (650) 253-0000",
            "+1.650.253.0000",
            "+16502530000",
            "011 1 650 253 0000",
            "  (650)253-0000  ",
            "(650)-253-0000",
            "650 2530000",
        ],
    ),
    (
        "GB",
        "+442079460018",
        &[
            "020 7946 0018",
            "(020) 7946 0018",
            "020-7946-0018",
            "02079460018",
            "+44 20 7946 0018",
            "+44 (0)20 7946 0018",
            "+44 (0) 20 7946 0018",
            "0044 20 7946 0018",
            "+442079460018",
            "020.7946.0018",
        ],
    ),
    (
        "GB",
        "+447911123456",
        &[
            "07911 123456",
            "07911-123-456",
            "07911 123 456",
            "+44 7911 123456",
            "+44 (0)7911 123456",
            "0044 7911 123 456",
            "+447911123456",
        ],
    ),
    (
        "DE",
        "+49301234567",
        &[
            "030 1234567",
            "030/1234567",
            "030-123 456 7",
            "(030) 1234567",
            "+49 30 1234567",
            "+49 (0)30 1234567",
            "+49 (0) 30 / 123 45 67",
            "0049 30 1234567",
            "0049301234567",
            "+49-30-1234567",
            "+49 30 123 45 67",
        ],
    ),
    (
        "DE",
        "+4915123456789",
        &[
            "0151 23456789",
            "0151/234 567 89",
            "+49 151 2345 6789",
            "+49 (0)151 23456789",
            "0049 151 23456789",
        ],
    ),
    (
        "FR",
        "+33123456789",
        &[
            "01 23 45 67 89",
            "01.23.45.67.89",
            "01-23-45-67-89",
            "0123456789",
            "+33 1 23 45 67 89",
            "+33 (0)1 23 45 67 89",
            "0033 1 23 45 67 89",
            "+33123456789",
        ],
    ),
    (
        "FR",
        "+33612345678",
        &[
            "06 12 34 56 78",
            "06.12.34.56.78",
            "+33 6 12 34 56 78",
            "0033 6 12 34 56 78",
        ],
    ),
    (
        "VN",
        "+84912345678",
        &[
            "0912 345 678",
            "0912.345.678",
            "0912-345-678",
            "091 234 5678",
            "+84 912 345 678",
            "+84 (0) 912 345 678",
            "0084 912 345 678",
            "+84912345678",
        ],
    ),
    (
        "VN",
        "+842838221234",
        &[
            "(028) 3822 1234",
            "028 3822 1234",
            "028.3822.1234",
            "+84 28 3822 1234",
            "0084 28 3822 1234",
        ],
    ),
    (
        "BR",
        "+5511987654321",
        &[
            "(11) 98765-4321",
            "11 98765-4321",
            "11 98765 4321",
            "(011) 98765-4321",
            "011 98765 4321",
            "+55 11 98765-4321",
            "+55 (11) 98765-4321",
            "+5511987654321",
            "11987654321",
        ],
    ),
    (
        "BR",
        "+552125551234",
        &[
            "(21) 2555-1234",
            "21 2555-1234",
            "+55 21 2555 1234",
            "(021) 2555-1234",
        ],
    ),
    (
        "IN",
        "+919876543210",
        &[
            "098765 43210",
            "09876543210",
            "98765 43210",
            "98765-43210",
            "9876543210",
            "+91 98765 43210",
            "+91-98765-43210",
            "+91 (0) 98765 43210",
            "0091 98765 43210",
            "+919876543210",
        ],
    ),
    (
        "IN",
        "+911123456789",
        &[
            "011 2345 6789",
            "011-23456789",
            "(011) 2345 6789",
            "+91 11 2345 6789",
            "0091 11 2345 6789",
        ],
    ),
];

#[test]
fn every_way_of_writing_a_number_reads_to_one_e164() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for (country, e164, forms) in SAME_NUMBER {
        let rules = rules(country);
        for form in *forms {
            checked += 1;
            let n = normalize(form, &rules);
            if n.e164.as_deref() != Some(*e164) || n.kind != NumberKind::Valid {
                failures.push(format!(
                    "{country} {form:?} -> {:?} {:?} (want {e164})",
                    n.e164, n.kind
                ));
            }
            assert_eq!(n.original, *form, "the text as written is kept");
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} misread:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked >= 100, "{checked}");
}

#[test]
fn international_numbers_read_the_same_whatever_the_default_country() {
    for (_, e164, forms) in SAME_NUMBER {
        let plus = forms.iter().find(|f| f.starts_with('+')).unwrap();
        for other in ["US", "GB", "DE", "FR", "VN", "BR", "IN"] {
            assert_eq!(
                normalize(plus, &rules(other)).e164.as_deref(),
                Some(*e164),
                "{plus} from {other}"
            );
        }
    }
    // Without a default country, only international forms can be read.
    assert_eq!(
        normalize("+44 20 7946 0018", &NumberRules::default())
            .e164
            .as_deref(),
        Some("+442079460018")
    );
    assert_eq!(
        normalize("020 7946 0018", &NumberRules::default()).kind,
        NumberKind::NeedsCountry
    );
}

#[test]
fn extensions_after_the_number_are_kept_apart() {
    for (country, text, e164, ext) in [
        ("US", "650-253-0000 x123", "+16502530000", "123"),
        ("US", "(650) 253-0000 ext. 123", "+16502530000", "123"),
        ("US", "+1 650 253 0000 ext 45", "+16502530000", "45"),
        ("GB", "020 7946 0018 x55", "+442079460018", "55"),
        ("DE", "030 1234567 #12", "+49301234567", "12"),
    ] {
        let n = normalize(text, &rules(country));
        assert_eq!(
            (n.e164.as_deref(), n.extension.as_deref()),
            (Some(e164), Some(ext)),
            "{text}"
        );
    }
}

#[test]
fn what_is_not_a_public_number_is_classified() {
    let us = rules("US");
    for (text, kind) in [
        ("", NumberKind::Withheld),
        ("   ", NumberKind::Withheld),
        ("anonymous", NumberKind::Withheld),
        ("Anonymous", NumberKind::Withheld),
        ("Private", NumberKind::Withheld),
        ("Withheld", NumberKind::Withheld),
        ("unavailable", NumberKind::Withheld),
        ("restricted", NumberKind::Withheld),
        ("1001", NumberKind::Extension),
        ("200", NumberKind::Extension),
        ("911", NumberKind::Extension),
        ("n/a", NumberKind::Invalid),
        ("call me", NumberKind::Invalid),
        ("+1 650 253", NumberKind::Invalid),
        ("+1 650 253 0000 0000 0000", NumberKind::Invalid),
        ("253-0000", NumberKind::LocalOnly),
    ] {
        let n = normalize(text, &us);
        assert_eq!(n.kind, kind, "{text:?}");
        assert_eq!(n.e164, None, "{text:?} has no E.164 form");
    }
    assert_eq!(
        normalize("(650) 253-0000", &NumberRules::default()).kind,
        NumberKind::NeedsCountry
    );
    // Ofcom's range for drama: the right length, not in service. Kept, and said so.
    let drama = normalize("07700 900123", &rules("GB"));
    assert_eq!(
        (drama.kind, drama.e164.as_deref()),
        (NumberKind::Possible, Some("+447700900123"))
    );
}

proptest::proptest! {
    #[test]
    fn no_text_makes_normalize_panic(text in ".{0,80}", country in proptest::sample::select(vec!["US", "GB", "DE", "FR", "VN", "BR", "IN"])) {
        let n = normalize(&text, &rules(country));
        if let Some(e) = &n.e164 {
            proptest::prop_assert!(e.starts_with('+') && e[1..].bytes().all(|b| b.is_ascii_digit()));
            proptest::prop_assert!(e.len() <= 16);
        }
    }

    #[test]
    fn digit_soup_never_panics(text in "[0-9+()#x .-]{0,40}") {
        let _ = normalize(&text, &rules("US"));
        let _ = normalize(&text, &NumberRules::default());
    }
}
