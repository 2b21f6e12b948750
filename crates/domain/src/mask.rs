//! Masking of personal fields for lists, exports and logs (RULES.md §4.2).

/// `张*` for two characters, `张*三` for three, `欧**华` for four; a single
/// character becomes `*`. Counts characters, not bytes.
pub fn mask_name(name: &str) -> String {
    todo!("{name}")
}

/// Keeps the first `keep_head` and last `keep_tail` characters and stars the
/// rest, preserving length. Used for document numbers of every kind.
pub fn mask_middle(value: &str, keep_head: usize, keep_tail: usize) -> String {
    todo!("{value}{keep_head}{keep_tail}")
}
