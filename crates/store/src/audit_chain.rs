//! The hash chain over the audit log: how an entry is hashed, and the pure
//! check that walks the log in `seq` order and names the first bad entry.
//!
//! Every entry carries `seq` (1, 2, 3, … with no gaps), `prev_hash` (the
//! `hash` of entry `seq - 1`, or 32 zero bytes for entry 1) and
//!
//! ```text
//! hash = SHA-256(prev_hash || canonical(seq, entry))
//! ```
//!
//! `canonical` is a prefix-free byte encoding of every field, in this order:
//!
//! | field           | encoding                                              |
//! |-----------------|-------------------------------------------------------|
//! | format tag      | string `epigrid.audit.v1`                             |
//! | `seq`           | i64, 8 bytes big-endian                               |
//! | `id`            | UUID, 16 bytes                                        |
//! | `at`            | i64 microseconds since 1970-01-01T00:00:00Z, 8 bytes BE |
//! | `actor_user_id` | optional UUID                                         |
//! | `actor_name`    | string                                                |
//! | `actor_role`    | optional string (the role's stable name, `grid_worker`) |
//! | `action`        | string                                                |
//! | `target_kind`   | optional string                                       |
//! | `target_id`     | optional UUID                                         |
//! | `community_id`  | optional UUID                                         |
//! | `client_addr`   | optional string                                       |
//! | `outcome`       | string                                                |
//! | `detail`        | string (the JSON text exactly as stored)              |
//!
//! A string is its UTF-8 length as u32 big-endian, then its bytes. An
//! optional value is the byte `0` when absent, or the byte `1` followed by
//! the value. Times count whole microseconds (rounded down), the precision
//! PostgreSQL keeps, so both backends hash the same bytes; the stores write
//! `at` already truncated to the microsecond.
//!
//! The chain is not keyed: it shows that the log was changed, deleted from,
//! reordered or spliced *after the fact*, but someone able to rewrite the
//! whole table could recompute every hash from the changed entry on. Writing
//! the head hash that `epigrid audit verify` prints somewhere else (a paper
//! register, a ticket) anchors the chain against that, and against the
//! newest entries being cut off, which no chain can detect on its own.

use std::fmt;

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::AuditRecord;

/// The `prev_hash` of entry 1.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// The tag that opens every canonical encoding; a new encoding gets a new tag.
const FORMAT_TAG: &str = "epigrid.audit.v1";

/// The canonical encoding of an entry at position `seq`.
pub fn canonical_bytes(seq: i64, entry: &AuditRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(160 + entry.detail.len());
    put_str(&mut out, FORMAT_TAG);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(entry.id.as_bytes());
    out.extend_from_slice(&entry.at.timestamp_micros().to_be_bytes());
    put_opt(&mut out, entry.actor_user_id.as_ref(), |o, id| o.extend_from_slice(id.as_bytes()));
    put_str(&mut out, &entry.actor_name);
    put_opt(&mut out, entry.actor_role.map(|r| r.as_str()).as_ref(), |o, r| put_str(o, r));
    put_str(&mut out, &entry.action);
    put_opt(&mut out, entry.target_kind.as_ref(), |o, k| put_str(o, k));
    put_opt(&mut out, entry.target_id.as_ref(), |o, id| o.extend_from_slice(id.as_bytes()));
    put_opt(&mut out, entry.community_id.as_ref(), |o, id| o.extend_from_slice(id.as_bytes()));
    put_opt(&mut out, entry.client_addr.as_ref(), |o, a| put_str(o, a));
    put_str(&mut out, &entry.outcome);
    put_str(&mut out, &entry.detail);
    out
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    // Audit fields are short; a field past 4 GiB could not be stored anyway.
    let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

fn put_opt<T>(out: &mut Vec<u8>, value: Option<&T>, put: impl FnOnce(&mut Vec<u8>, &T)) {
    match value {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            put(out, v);
        }
    }
}

/// `SHA-256(prev_hash || canonical(seq, entry))`.
pub fn chain_hash(prev_hash: &[u8], seq: i64, entry: &AuditRecord) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash);
    hasher.update(canonical_bytes(seq, entry));
    hasher.finalize().into()
}

/// One stored entry with its place in the chain, as read back for
/// verification. `entry` is an error text when the row no longer decodes
/// (a role or time overwritten with something that is not one).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditLink {
    pub seq: i64,
    /// The entry's id, when it still reads as one.
    pub id: Option<Uuid>,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
    pub entry: Result<AuditRecord, String>,
}

impl AuditLink {
    /// A correctly chained link for `entry` at `seq` after `prev_hash`.
    pub fn new(seq: i64, prev_hash: &[u8], entry: AuditRecord) -> Self {
        let hash = chain_hash(prev_hash, seq, &entry).to_vec();
        Self { seq, id: Some(entry.id), prev_hash: prev_hash.to_vec(), hash, entry: Ok(entry) }
    }
}

/// Why an entry breaks the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakReason {
    /// The entry is not at the position that follows the one before it:
    /// entries from `expected` up to this one are missing (deleted), or the
    /// log does not start at 1.
    SeqGap { expected: i64 },
    /// The entry does not chain from the entry before it: that entry was
    /// deleted, replaced, or the entries were reordered.
    PrevHashMismatch,
    /// The entry's content (or its stored hash) was changed after it was
    /// written.
    HashMismatch,
    /// The entry no longer decodes (a field was overwritten with a value of
    /// the wrong kind).
    Unreadable(String),
}

impl fmt::Display for BreakReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SeqGap { expected } => write!(
                f,
                "expected seq={expected} here: the entries before this one are missing (deleted)"
            ),
            Self::PrevHashMismatch => f.write_str(
                "it does not chain from the entry before it (an entry was deleted, replaced or reordered)",
            ),
            Self::HashMismatch => {
                f.write_str("its content does not match its hash (the entry was changed)")
            }
            Self::Unreadable(why) => write!(f, "the entry no longer reads back ({why})"),
        }
    }
}

/// The first bad entry of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    pub seq: i64,
    pub id: Option<Uuid>,
    pub reason: BreakReason,
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.id {
            Some(id) => write!(f, "entry seq={} id={id}: {}", self.seq, self.reason),
            None => write!(f, "entry seq={} id=?: {}", self.seq, self.reason),
        }
    }
}

/// The last entry of an intact chain: its position and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: [u8; 32],
}

/// What verifying a whole log found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainVerdict {
    /// Every entry checks out. `head` is `None` for an empty log.
    Intact {
        entries: u64,
        head: Option<ChainHead>,
    },
    Broken(ChainBreak),
}

/// Checks entries one at a time, in `seq` order, so a log of any length is
/// verified a page at a time.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    next_seq: i64,
    prev_hash: [u8; 32],
    entries: u64,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    pub fn new() -> Self {
        Self { next_seq: 1, prev_hash: GENESIS_HASH, entries: 0 }
    }

    /// The `seq` of the last entry accepted (0 before the first): the
    /// cursor to read the next page after.
    pub fn last_seq(&self) -> i64 {
        self.next_seq - 1
    }

    /// Accepts the next entry, or names why it breaks the chain.
    pub fn check(&mut self, link: &AuditLink) -> Result<(), ChainBreak> {
        let fail = |reason| ChainBreak { seq: link.seq, id: link.id, reason };
        if link.seq != self.next_seq {
            return Err(fail(BreakReason::SeqGap { expected: self.next_seq }));
        }
        let entry =
            link.entry.as_ref().map_err(|why| fail(BreakReason::Unreadable(why.clone())))?;
        if link.prev_hash != self.prev_hash {
            return Err(fail(BreakReason::PrevHashMismatch));
        }
        let hash = chain_hash(&link.prev_hash, link.seq, entry);
        if link.hash != hash {
            return Err(fail(BreakReason::HashMismatch));
        }
        self.next_seq += 1;
        self.prev_hash = hash;
        self.entries += 1;
        Ok(())
    }

    /// The verdict on everything accepted so far.
    pub fn finish(&self) -> ChainVerdict {
        let head =
            (self.entries > 0).then(|| ChainHead { seq: self.last_seq(), hash: self.prev_hash });
        ChainVerdict::Intact { entries: self.entries, head }
    }
}

/// Verifies a whole log held in memory (tests, small logs).
pub fn verify_chain<'a>(links: impl IntoIterator<Item = &'a AuditLink>) -> ChainVerdict {
    let mut verifier = ChainVerifier::new();
    for link in links {
        if let Err(broken) = verifier.check(link) {
            return ChainVerdict::Broken(broken);
        }
    }
    verifier.finish()
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use epigrid_domain::Role;

    use super::*;

    fn entry(n: u8) -> AuditRecord {
        AuditRecord {
            id: Uuid::from_bytes([n; 16]),
            at: Utc.with_ymd_and_hms(2022, 11, 29, 8, 0, u32::from(n)).unwrap(),
            actor_user_id: Some(Uuid::from_bytes([0xAA; 16])),
            actor_name: "g01".into(),
            actor_role: Some(Role::GridWorker),
            action: "resident.update".into(),
            target_kind: Some("resident".into()),
            target_id: Some(Uuid::from_bytes([0xBB; 16])),
            community_id: None,
            client_addr: Some("10.0.0.7".into()),
            outcome: "ok".into(),
            detail: format!(r#"{{"fields":["phone"],"n":{n}}}"#),
        }
    }

    /// A correctly chained log of `n` entries.
    fn log(n: u8) -> Vec<AuditLink> {
        let mut prev = GENESIS_HASH.to_vec();
        (1..=n)
            .map(|i| {
                let link = AuditLink::new(i64::from(i), &prev, entry(i));
                prev = link.hash.clone();
                link
            })
            .collect()
    }

    fn broken_at(links: &[AuditLink]) -> ChainBreak {
        match verify_chain(links) {
            ChainVerdict::Broken(b) => b,
            intact => panic!("expected a break, got {intact:?}"),
        }
    }

    #[test]
    fn a_fixed_entry_has_a_fixed_hash() {
        // Pins the encoding: a change here breaks every stored chain, so it
        // needs a new format tag, not a new expected value. The value was
        // checked against an independent implementation of the table above
        // (Python: hashlib, struct.pack('>I'/'>q')).
        let hash = chain_hash(&GENESIS_HASH, 1, &entry(1));
        assert_eq!(
            hex::encode(hash),
            "84e3ea1ef746ff3e71137bc33e06bedc53c7d07da4d49a5d2a88824cf872d048",
        );
    }

    #[test]
    fn the_encoding_is_unambiguous_between_neighbouring_fields() {
        let mut a = entry(1);
        a.actor_name = "ab".into();
        a.action = "c".into();
        let mut b = entry(1);
        b.actor_name = "a".into();
        b.action = "bc".into();
        assert_ne!(canonical_bytes(1, &a), canonical_bytes(1, &b));
        let mut none = entry(1);
        none.target_kind = None;
        let mut empty = entry(1);
        empty.target_kind = Some(String::new());
        assert_ne!(canonical_bytes(1, &none), canonical_bytes(1, &empty), "absent is not empty");
    }

    #[test]
    fn every_field_and_the_position_are_hashed() {
        let base = entry(1);
        let hash = |e: &AuditRecord| chain_hash(&GENESIS_HASH, 1, e);
        let changes: Vec<fn(&mut AuditRecord)> = vec![
            |e| e.id = Uuid::from_bytes([9; 16]),
            |e| e.at += chrono::Duration::microseconds(1),
            |e| e.actor_user_id = None,
            |e| e.actor_name.push('x'),
            |e| e.actor_role = Some(Role::SubDistrictAdmin),
            |e| e.action = "resident.unmask".into(),
            |e| e.target_kind = Some("household".into()),
            |e| e.target_id = None,
            |e| e.community_id = Some(Uuid::from_bytes([7; 16])),
            |e| e.client_addr = Some("10.0.0.8".into()),
            |e| e.outcome = "denied".into(),
            |e| e.detail = "{}".into(),
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut changed = base.clone();
            change(&mut changed);
            assert_ne!(hash(&changed), hash(&base), "change {i} is not hashed");
        }
        assert_ne!(chain_hash(&GENESIS_HASH, 2, &base), hash(&base), "seq is hashed");
        assert_ne!(chain_hash(&[1; 32], 1, &base), hash(&base), "prev_hash is hashed");
        let mut sub_micro = base.clone();
        sub_micro.at += chrono::Duration::nanoseconds(999);
        assert_eq!(hash(&sub_micro), hash(&base), "times count whole microseconds");
    }

    #[test]
    fn an_intact_log_verifies_and_reports_its_head() {
        let links = log(5);
        assert_eq!(
            verify_chain(&links),
            ChainVerdict::Intact {
                entries: 5,
                head: Some(ChainHead { seq: 5, hash: links[4].hash.clone().try_into().unwrap() }),
            }
        );
        assert_eq!(verify_chain(&[]), ChainVerdict::Intact { entries: 0, head: None });
    }

    #[test]
    fn a_changed_entry_is_named() {
        let mut links = log(6);
        if let Ok(e) = links[2].entry.as_mut() {
            e.outcome = "denied".into();
        }
        let broken = broken_at(&links);
        assert_eq!((broken.seq, broken.id), (3, Some(Uuid::from_bytes([3; 16]))));
        assert_eq!(broken.reason, BreakReason::HashMismatch);
        assert!(broken.to_string().starts_with("entry seq=3 id=03030303-"), "{broken}");
    }

    #[test]
    fn a_changed_hash_is_named() {
        let mut links = log(4);
        links[1].hash[0] ^= 1;
        assert_eq!(broken_at(&links).seq, 2);
        assert_eq!(broken_at(&links).reason, BreakReason::HashMismatch);
    }

    #[test]
    fn a_deleted_entry_is_named_by_the_one_after_the_gap() {
        let mut links = log(6);
        links.remove(3);
        let broken = broken_at(&links);
        assert_eq!(broken.seq, 5);
        assert_eq!(broken.reason, BreakReason::SeqGap { expected: 4 });
        let mut first_gone = log(3);
        first_gone.remove(0);
        assert_eq!(broken_at(&first_gone).reason, BreakReason::SeqGap { expected: 1 });
    }

    #[test]
    fn a_deletion_hidden_by_renumbering_is_named() {
        // Entry 4 deleted and 5, 6 renumbered to close the gap: entry 5
        // (now at seq 4) does not chain from entry 3.
        let mut links = log(6);
        links.remove(3);
        for link in &mut links[3..] {
            link.seq -= 1;
        }
        let broken = broken_at(&links);
        assert_eq!((broken.seq, broken.id), (4, Some(Uuid::from_bytes([5; 16]))));
        assert_eq!(broken.reason, BreakReason::PrevHashMismatch);
    }

    #[test]
    fn reordered_entries_are_named() {
        // Rows 3 and 4 swap positions (their seq swapped too).
        let mut links = log(5);
        links.swap(2, 3);
        links[2].seq = 3;
        links[3].seq = 4;
        let broken = broken_at(&links);
        assert_eq!((broken.seq, broken.id), (3, Some(Uuid::from_bytes([4; 16]))));
        assert_eq!(broken.reason, BreakReason::PrevHashMismatch);
        // Swapped contents with links left in place: the content is hashed
        // with its position, so it no longer matches.
        let mut links = log(5);
        let (a, b) = (links[2].entry.clone(), links[3].entry.clone());
        links[2].entry = b;
        links[3].entry = a;
        assert_eq!(broken_at(&links).seq, 3);
        assert_eq!(broken_at(&links).reason, BreakReason::HashMismatch);
    }

    #[test]
    fn an_unreadable_entry_is_named() {
        let mut links = log(3);
        links[1].entry = Err("stored role is not valid".into());
        let broken = broken_at(&links);
        assert_eq!(broken.seq, 2);
        assert!(matches!(broken.reason, BreakReason::Unreadable(_)));
    }

    #[test]
    fn the_verifier_continues_across_pages() {
        let links = log(7);
        let mut verifier = ChainVerifier::new();
        for page in links.chunks(3) {
            for link in page {
                verifier.check(link).unwrap();
            }
            assert_eq!(verifier.last_seq(), page.last().unwrap().seq);
        }
        assert!(matches!(verifier.finish(), ChainVerdict::Intact { entries: 7, .. }));
    }
}
