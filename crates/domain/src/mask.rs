//! Masking of personal fields for lists, exports and logs (RULES.md §4.2).

/// `张*` for two characters, `张*三` for three, `欧**华` for four; a single
/// character becomes `*`. Counts characters, not bytes.
pub fn mask_name(name: &str) -> String {
    let chars: Vec<char> = name.trim().chars().collect();
    match chars.as_slice() {
        [] => String::new(),
        [_] => "*".to_owned(),
        [first, _] => format!("{first}*"),
        [first, middle @ .., last] => {
            let mut masked = String::with_capacity(name.len());
            masked.push(*first);
            masked.extend(std::iter::repeat_n('*', middle.len()));
            masked.push(*last);
            masked
        }
    }
}

/// Keeps the first `keep_head` and last `keep_tail` characters and stars the
/// rest, preserving length. Used for document numbers of every kind.
///
/// A value too short to hide anything between head and tail keeps only its
/// first character: showing it whole would defeat the mask.
pub fn mask_middle(value: &str, keep_head: usize, keep_tail: usize) -> String {
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    if n == 1 {
        return "*".to_owned();
    }
    let (head, tail) = if n <= keep_head.saturating_add(keep_tail) {
        (n.min(1), 0)
    } else {
        (keep_head, keep_tail)
    };
    let mut masked = String::with_capacity(value.len());
    masked.extend(&chars[..head]);
    masked.extend(std::iter::repeat_n('*', n - head - tail));
    masked.extend(&chars[n - tail..]);
    masked
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_follow_the_rules_examples() {
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name("张小三"), "张*三");
        assert_eq!(mask_name("欧阳振华"), "欧**华");
        assert_eq!(mask_name("张"), "*");
        assert_eq!(mask_name(""), "");
    }

    #[test]
    fn names_are_trimmed_before_masking() {
        assert_eq!(mask_name("  张小三 \t"), "张*三");
        assert_eq!(mask_name("   "), "");
    }

    #[test]
    fn minority_and_latin_names_keep_only_their_ends() {
        assert_eq!(mask_name("买买提·艾力"), "买****力");
        assert_eq!(mask_name("John Smith"), "J********h");
    }

    #[test]
    fn document_numbers_follow_the_rules_examples() {
        assert_eq!(mask_middle("370102199001011234", 6, 4), "370102********1234");
        assert_eq!(mask_middle("13812345678", 3, 4), "138****5678");
    }

    #[test]
    fn short_values_show_only_their_first_character() {
        assert_eq!(mask_middle("1234", 2, 2), "1***");
        assert_eq!(mask_middle("12", 6, 4), "1*");
        assert_eq!(mask_middle("1", 0, 0), "*");
        assert_eq!(mask_middle("", 6, 4), "");
        assert_eq!(mask_middle("12345", 2, 2), "12*45");
    }

    #[test]
    fn huge_keep_counts_do_not_overflow() {
        assert_eq!(mask_middle("abc", usize::MAX, usize::MAX), "a**");
    }

    proptest! {
        #[test]
        fn mask_middle_preserves_length_and_hides_something(
            value in "\\PC{0,40}", head in 0usize..10, tail in 0usize..10,
        ) {
            let masked = mask_middle(&value, head, tail);
            let n = value.chars().count();
            prop_assert_eq!(masked.chars().count(), n);
            if n > 0 {
                prop_assert!(masked.contains('*'));
            }
            if n > head + tail {
                let kept_head: String = value.chars().take(head).collect();
                let kept_tail: String = value.chars().skip(n - tail).collect();
                prop_assert!(masked.starts_with(&kept_head));
                prop_assert!(masked.ends_with(&kept_tail));
            }
        }

        #[test]
        fn mask_name_keeps_the_character_count(name in "[\\p{Han}a-z]{1,20}") {
            let masked = mask_name(&name);
            prop_assert_eq!(masked.chars().count(), name.chars().count());
            prop_assert_ne!(masked, name);
        }
    }
}
