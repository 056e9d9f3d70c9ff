//! Go's matching of object keys to struct fields (`encoding/json` v1): a key names the field
//! it spells exactly, or else the field it spells under Unicode simple case folding, so
//! `Role`, `ROLE` and `rOlE` all fill `role`.
//!
//! Go folds each character to the smallest one of its folding orbit and compares the results
//! (`foldName`). Every field name here is ASCII, and only two characters outside ASCII share
//! an orbit with an ASCII letter: U+017F (long s, with `s` and `S`) and U+212A (the Kelvin
//! sign, with `k` and `K`). A key therefore folds to a field name when, character for byte,
//! each is an ASCII letter of either case, the same ASCII byte, or one of those two.

/// The field of `names` that `key` names under Go's case folding, for a key that names none
/// of them exactly (callers match exact names first, as Go does).
pub fn fold_match(key: &str, names: &[&'static str]) -> Option<&'static str> {
    names.iter().copied().find(|name| folds_to(key, name))
}

/// True when `key` folds to the ASCII `name`.
fn folds_to(key: &str, name: &str) -> bool {
    // One character of `key` per byte of `name`, each 1 to 3 bytes long: a cheap reject for
    // the unknown keys that reach this path.
    if key.len() < name.len() || key.len() > 3 * name.len() {
        return false;
    }
    let mut name = name.bytes();
    key.chars()
        .all(|c| name.next().is_some_and(|b| folds_with(c, b)))
        && name.next().is_none()
}

/// True when `c` is in the folding orbit of the ASCII byte `b`.
fn folds_with(c: char, b: u8) -> bool {
    match c {
        '\u{17F}' => b.eq_ignore_ascii_case(&b's'),
        '\u{212A}' => b.eq_ignore_ascii_case(&b'k'),
        _ => u8::try_from(c).is_ok_and(|a| a.is_ascii() && a.eq_ignore_ascii_case(&b)),
    }
}

/// A `match` on an object key with Go's field matching. The arms name fields exactly (each
/// may have a guard); a key that matches none of them is folded, and the arms are tried again
/// with the field name it folds to. `_` takes a key that names no field.
///
/// The exact arms come first so that the common case costs what a plain `match` costs.
macro_rules! match_field {
    ($key:expr, {
        $($name:literal $(if $guard:expr)? => $arm:expr,)*
        _ => $other:expr $(,)?
    }) => {{
        let mut name: &str = $key;
        loop {
            break match name {
                $($name $(if $guard)? => $arm,)*
                written => match $crate::gojson::fold_match(written, &[$($name),*]) {
                    // A guard that refused the exact name must not send it round again.
                    Some(folded) if folded != written => {
                        name = folded;
                        continue;
                    }
                    _ => $other,
                },
            };
        }
    }};
}
pub(crate) use match_field;

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Go's `foldName` for the characters the tests draw: the smallest character of each
    /// folding orbit (ASCII letters fold to upper case).
    fn go_fold(s: &str) -> String {
        s.chars()
            .map(|c| match c {
                '\u{17F}' => 'S',
                '\u{212A}' => 'K',
                // `ı`, `İ`, `ß` and the full-width letters fold to no ASCII character.
                c => c.to_ascii_uppercase(),
            })
            .collect()
    }

    const NAMES: &[&str] = &["role", "content", "tool_use_id", "stop_reason", "kind", "s"];

    #[test]
    fn key_case_folds_like_go() {
        for (key, want) in [
            ("ROLE", Some("role")),
            ("Role", Some("role")),
            ("rOlE", Some("role")),
            ("TOOL_USE_ID", Some("tool_use_id")),
            ("\u{17F}top_rea\u{17F}on", Some("stop_reason")),
            ("\u{212A}ind", Some("kind")),
            ("\u{17F}", Some("s")),
            ("toolUseId", None),
            ("tool-use-id", None),
            ("rolE ", None),
            ("r\u{131}le", None),
            ("kınd", None),
            ("\u{FF32}ole", None),
            ("", None),
        ] {
            assert_eq!(fold_match(key, NAMES), want, "{key:?}");
        }
    }

    fn key_chars() -> impl Strategy<Value = char> {
        prop::sample::select(vec![
            'r', 'R', 'o', 'O', 'l', 'L', 'e', 'E', 's', 'S', 'k', 'K', 'i', 'I', 'n', 'N', 'd',
            'D', '_', '-', '1', '\u{17F}', '\u{212A}', '\u{131}', '\u{130}', '\u{DF}', 'é',
            '\u{FF33}', '\u{FFFD}',
        ])
    }

    proptest! {
        #[test]
        fn key_case_folding_agrees_with_go_fold_name(
            chars in prop::collection::vec(key_chars(), 0..8),
            name in prop::sample::select(vec!["role", "kind", "s", "side", "links", "sk_id"]),
        ) {
            let key: String = chars.into_iter().collect();
            let go = go_fold(&key) == go_fold(name);
            prop_assert_eq!(fold_match(&key, &[name]).is_some(), go, "{:?} vs {:?}", key, name);
        }

        #[test]
        fn every_casing_of_a_field_name_folds_to_it(
            name in prop::sample::select(NAMES.to_vec()),
            flips in prop::collection::vec(0u8..4, 12),
        ) {
            let key: String = name
                .chars()
                .zip(flips.iter().cycle())
                .map(|(c, flip)| match (c, flip) {
                    ('s', 3) => '\u{17F}',
                    ('k', 3) => '\u{212A}',
                    (c, 1 | 3) => c.to_ascii_uppercase(),
                    (c, _) => c,
                })
                .collect();
            let found = if key == name { Some(name) } else { fold_match(&key, NAMES) };
            prop_assert_eq!(found, Some(name));
        }
    }
}
