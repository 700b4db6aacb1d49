//! Inputs for the parsers' property tests: valid samples, damaged the ways hostile or broken
//! senders damage them (bytes flipped, cut, repeated, markup characters dropped in).
//!
//! The suite runs each property a few hundred times; `PROPTEST_CASES=100000 cargo test --lib
//! fuzz_` runs them as long as one likes (BENCHMARKS.md records such a run).

use proptest::prelude::*;

/// Fragments that mean something to one of our parsers somewhere.
const TOKENS: &[&[u8]] = &[
    b"<",
    b">",
    b"</",
    b"/>",
    b"&",
    b"&amp;",
    b"&#x0;",
    b"&#1114112;",
    b"<!DOCTYPE x>",
    b"<![CDATA[",
    b"\"",
    b"'",
    b"=",
    b":",
    b"xmlns:a=\"urn:a\"",
    b"\r\n",
    b"\r\n\r\n",
    b"--",
    b"--b\r\n",
    b"cid:",
    b"<xop:Include href=\"cid:p\"/>",
    b",",
    b";",
    b"{",
    b"}",
    b"[",
    b"]",
    b"\\u0000",
    b"\\ud800",
    b"PK\x03\x04",
    b"\xff\xfe",
    b"\xc3",
    b"\0",
];

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Insert { at: usize, bytes: Vec<u8> },
    Token { at: usize, token: usize },
    Delete { at: usize, len: usize },
    Repeat { at: usize, len: usize, times: usize },
    Truncate { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, token)| Mutation::Token { at, token }),
        (any::<usize>(), 1usize..64).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), 1usize..64, 1usize..50).prop_map(|(at, len, times)| Mutation::Repeat {
            at,
            len,
            times
        }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
    ]
}

impl Mutation {
    fn apply(&self, b: &mut Vec<u8>) {
        let pos = |at: usize, b: &Vec<u8>| if b.is_empty() { 0 } else { at % (b.len() + 1) };
        match self {
            Mutation::Flip { at, bit } => {
                if !b.is_empty() {
                    let i = at % b.len();
                    b[i] ^= 1 << bit;
                }
            }
            Mutation::Insert { at, bytes } => {
                let i = pos(*at, b);
                b.splice(i..i, bytes.iter().copied());
            }
            Mutation::Token { at, token } => {
                let i = pos(*at, b);
                b.splice(i..i, TOKENS[*token].iter().copied());
            }
            Mutation::Delete { at, len } => {
                let i = pos(*at, b);
                let end = (i + len).min(b.len());
                b.drain(i..end);
            }
            Mutation::Repeat { at, len, times } => {
                let i = pos(*at, b);
                let end = (i + len).min(b.len());
                let piece = b[i..end].to_vec();
                for _ in 0..*times {
                    b.splice(end..end, piece.iter().copied());
                }
            }
            Mutation::Truncate { at } => {
                let i = pos(*at, b);
                b.truncate(i);
            }
        }
    }
}

/// One of `seeds`, with up to eight mutations applied.
pub fn mutated(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    assert!(!seeds.is_empty());
    (0..seeds.len(), prop::collection::vec(mutation(), 0..8)).prop_map(move |(i, mutations)| {
        let mut b = seeds[i].clone();
        for m in &mutations {
            m.apply(&mut b);
        }
        b
    })
}

/// The suite's default number of cases per property, unless PROPTEST_CASES says otherwise.
pub fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}
