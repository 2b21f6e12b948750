//! Translations. Every user-facing string, including the message of each API
//! error code, comes from `locales/*.json`, embedded in the binary. Chinese
//! is the default; English is complete (a test keeps the two in step).

use std::collections::HashMap;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    ZhCn,
    En,
}

impl Lang {
    pub fn tag(self) -> &'static str {
        match self {
            Lang::ZhCn => "zh-CN",
            Lang::En => "en",
        }
    }

    /// Picks the first supported language of an `Accept-Language` header;
    /// Chinese when nothing matches.
    pub fn from_accept_language(header: &str) -> Lang {
        for part in header.split(',') {
            let tag = part.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
            if tag.starts_with("zh") {
                return Lang::ZhCn;
            }
            if tag.starts_with("en") {
                return Lang::En;
            }
        }
        Lang::ZhCn
    }

    pub fn parse(tag: &str) -> Option<Lang> {
        match tag.to_ascii_lowercase().as_str() {
            "zh" | "zh-cn" => Some(Lang::ZhCn),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
}

type Catalogue = HashMap<String, String>;

fn catalogue(lang: Lang) -> &'static Catalogue {
    static ZH: OnceLock<Catalogue> = OnceLock::new();
    static EN: OnceLock<Catalogue> = OnceLock::new();
    let (cell, text) = match lang {
        Lang::ZhCn => (&ZH, include_str!("../locales/zh-CN.json")),
        Lang::En => (&EN, include_str!("../locales/en.json")),
    };
    cell.get_or_init(|| serde_json::from_str(text).expect("embedded locale file is valid JSON"))
}

/// The message for `key`, or the key itself when a translation is missing
/// (a test makes sure none is).
pub fn t(lang: Lang, key: &str) -> String {
    catalogue(lang).get(key).cloned().unwrap_or_else(|| key.to_owned())
}

pub fn has_key(lang: Lang, key: &str) -> bool {
    catalogue(lang).contains_key(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_have_the_same_keys() {
        let zh: std::collections::BTreeSet<_> = catalogue(Lang::ZhCn).keys().collect();
        let en: std::collections::BTreeSet<_> = catalogue(Lang::En).keys().collect();
        let only_zh: Vec<_> = zh.difference(&en).collect();
        let only_en: Vec<_> = en.difference(&zh).collect();
        assert!(
            only_zh.is_empty() && only_en.is_empty(),
            "zh only {only_zh:?}, en only {only_en:?}"
        );
        assert!(catalogue(Lang::ZhCn).values().all(|v| !v.trim().is_empty()));
        assert!(catalogue(Lang::En).values().all(|v| !v.trim().is_empty()));
    }

    #[test]
    fn accept_language_prefers_the_first_supported() {
        assert_eq!(Lang::from_accept_language("en-US,en;q=0.9,zh;q=0.8"), Lang::En);
        assert_eq!(Lang::from_accept_language("zh-CN,zh;q=0.9"), Lang::ZhCn);
        assert_eq!(Lang::from_accept_language("fr-FR"), Lang::ZhCn);
        assert_eq!(Lang::from_accept_language(""), Lang::ZhCn);
    }

    #[test]
    fn every_domain_reason_code_is_translated() {
        use epigrid_domain::ReasonCode;
        use epigrid_domain::area::BoundaryError;
        use epigrid_domain::codes::CodeError;
        use epigrid_domain::resident::{NameError, TagError};
        use epigrid_domain::{IdDocumentError, PhoneError};
        let codes: Vec<&str> = [
            IdDocumentError::Empty.code(),
            IdDocumentError::UnknownFormat.code(),
            IdDocumentError::BadChecksum { expected: 'X' }.code(),
            IdDocumentError::BadBirthDate.code(),
            IdDocumentError::FutureBirthDate.code(),
            PhoneError::Empty.code(),
            PhoneError::Format.code(),
            NameError::Empty.code(),
            NameError::TooLong.code(),
            NameError::ControlCharacter.code(),
            TagError.code(),
            BoundaryError::NotGeoJson.code(),
            BoundaryError::NotPolygon.code(),
            BoundaryError::BadRing.code(),
            BoundaryError::OutOfRange.code(),
            CodeError::SubDistrictFormat.code(),
            CodeError::Township.code(),
            CodeError::CommunityFormat.code(),
            CodeError::VillageLevel.code(),
            CodeError::GridFormat.code(),
            CodeError::GridSequence.code(),
            CodeError::NotUnderParent.code(),
        ]
        .to_vec();
        for code in codes {
            assert!(has_key(Lang::ZhCn, code), "missing translation for {code}");
        }
    }

    /// Every literal key passed to `t(…)` in the templates and the Rust
    /// sources, and every key built from an enum, exists in both languages.
    #[test]
    fn every_key_the_code_uses_is_translated() {
        fn literal_keys(text: &str, keys: &mut Vec<String>) {
            for marker in ["t(\"", "t(lang, \"", "t(self.0, \"", "t(page.lang, \""] {
                for (at, _) in text.match_indices(marker) {
                    let rest = &text[at + marker.len()..];
                    if let Some(end) = rest.find('"') {
                        let key = &rest[..end];
                        if key.contains('.') && !key.contains('{') && !key.contains(' ') {
                            keys.push(key.to_owned());
                        }
                    }
                }
            }
        }
        fn walk(dir: &std::path::Path, keys: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, keys);
                } else if path.extension().is_some_and(|e| e == "rs" || e == "html") {
                    literal_keys(&std::fs::read_to_string(&path).unwrap(), keys);
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut keys = Vec::new();
        walk(&root.join("templates"), &mut keys);
        walk(&root.join("src"), &mut keys);
        assert!(keys.len() > 100, "the scan finds the keys in use ({})", keys.len());
        keys.extend(epigrid_domain::Role::ALL.iter().map(|r| format!("role.{}", r.as_str())));
        keys.extend(
            epigrid_domain::Relation::ALL.iter().map(|r| format!("relation.{}", r.as_str())),
        );
        keys.extend(epigrid_domain::Tag::BUILT_IN.iter().map(|t| format!("tag.{t}")));
        keys.extend(["residence.registered", "residence.floating"].map(String::from));
        keys.extend(
            epigrid_service::privacy::UnmaskReason::ALL
                .iter()
                .map(|r| format!("unmask.reason.{}", r.as_str())),
        );
        let missing: Vec<&String> =
            keys.iter().filter(|k| !has_key(Lang::ZhCn, k) || !has_key(Lang::En, k)).collect();
        assert!(missing.is_empty(), "keys used but not translated: {missing:?}");
    }
}
