//! How a message's MIME is kept in `messages.mime`: byte for byte the message the gateway
//! built, with each attachment's base64 body stored as the bytes it encodes.
//!
//! Why: a C-CDA is repetitive XML that PostgreSQL's lz4 shrinks several times over, but
//! base64 hides most of the repeats (they only line up one time in three). Stored decoded, a
//! 100 KB C-CDA's message takes 16 KB instead of 52 KB, and so does its share of the WAL and of
//! the TOAST table's index (measured in BENCHMARKS.md). Reading re-encodes with the very
//! function that built the message, so the bytes come back exactly.
//!
//! Rows written before packing existed hold plain MIME, which never starts with a NUL byte,
//! so `unpack` tells the two apart by their first bytes.

use crate::direct::mime::{Built, Piece, base64_lines};

/// Starts every packed value. MIME is text and never starts with NUL.
const MAGIC: &[u8] = b"\0hisp-packed-mime\x01";
/// A stretch of the message's text follows.
const TEXT: u8 = 0;
/// The bytes of a base64 body follow, written out as `mime::base64_lines` of them.
const BASE64: u8 = 1;

/// A message's MIME in its stored form. Built only from a built message, so the store is
/// never handed anything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedMime(Vec<u8>);

#[derive(Debug, thiserror::Error)]
#[error("stored MIME is damaged: {0}")]
pub struct UnpackError(&'static str);

impl PackedMime {
    pub fn new(built: &Built) -> Self {
        let size: usize = built
            .pieces()
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.len() + 9,
                Piece::Base64(b) => b.len() + 9,
            })
            .sum();
        let mut out = Vec::with_capacity(MAGIC.len() + size);
        out.extend_from_slice(MAGIC);
        for piece in built.pieces() {
            let (tag, bytes) = match piece {
                Piece::Text(t) => (TEXT, t.as_slice()),
                Piece::Base64(b) => (BASE64, *b),
            };
            if !bytes.is_empty() || tag == BASE64 {
                out.push(tag);
                out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
                out.extend_from_slice(bytes);
            }
        }
        Self(out)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// The message as it was built, from what `messages.mime` holds (packed or, for rows older
/// than packing, plain).
pub fn unpack(stored: Vec<u8>) -> Result<Vec<u8>, UnpackError> {
    let Some(mut rest) = stored.strip_prefix(MAGIC) else {
        return Ok(stored);
    };
    let mut out = Vec::with_capacity(stored.len() * 2);
    while let Some((&tag, tail)) = rest.split_first() {
        let (head, tail) = split(tail, 8)?;
        let len = u64::from_le_bytes(head.try_into().expect("eight bytes"));
        let len = usize::try_from(len).map_err(|_| UnpackError("segment too long"))?;
        let (bytes, tail) = split(tail, len)?;
        match tag {
            TEXT => out.extend_from_slice(bytes),
            BASE64 => out.extend_from_slice(&base64_lines(bytes)),
            _ => return Err(UnpackError("unknown segment")),
        }
        rest = tail;
    }
    Ok(out)
}

fn split(bytes: &[u8], at: usize) -> Result<(&[u8], &[u8]), UnpackError> {
    if bytes.len() < at {
        return Err(UnpackError("truncated"));
    }
    Ok(bytes.split_at(at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::direct::mime::{OutboundAttachment, OutboundMessage, build, build_pieces};

    fn ccda() -> Vec<u8> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/ccda/ccd-2.xml"
        ))
        .expect("fixture")
    }

    fn noise(len: usize) -> Vec<u8> {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn attachment(name: &str, media_type: &str, content: Vec<u8>) -> OutboundAttachment {
        OutboundAttachment {
            media_type: media_type.to_owned(),
            file_name: name.to_owned(),
            title: None,
            content,
        }
    }

    fn message<'a>(to: &'a [String], attachments: &'a [OutboundAttachment]) -> OutboundMessage<'a> {
        OutboundMessage {
            from: "sender@a.example.org",
            to,
            subject: Some("Referral"),
            body: Some("See the attached documents."),
            message_id: "0192@a.example.org",
            in_reply_to: None,
            date: chrono::DateTime::from_timestamp(1_795_000_000, 0).expect("date"),
            request_final_delivery: false,
            attachments,
        }
    }

    #[test]
    fn a_message_comes_back_byte_for_byte_and_smaller() {
        let to = ["dr.b@b.example.org".to_owned()];
        // Bodies of every length modulo 3 and around a line's worth of characters.
        let mut attachments = vec![
            attachment("ccd.xml", "text/xml", ccda()),
            attachment("scan.pdf", "application/pdf", noise(10_000)),
            attachment("empty.txt", "text/plain", Vec::new()),
        ];
        for len in [1, 2, 3, 56, 57, 58, 114] {
            attachments.push(attachment("n.bin", "application/octet-stream", noise(len)));
        }
        let m = message(&to, &attachments);
        let built = build_pieces(&m).expect("builds");
        let bytes = built.to_bytes();
        assert_eq!(built.len(), bytes.len());
        let packed = PackedMime::new(&built);
        assert_eq!(unpack(packed.as_bytes().to_vec()).expect("unpacks"), bytes);
        // Every body is stored decoded: a quarter fewer bytes before any compression.
        let bodies: usize = attachments.iter().map(|a| a.content.len()).sum();
        assert!(
            packed.as_bytes().len() < bytes.len() - bodies / 3 + 1,
            "packed {} of {}",
            packed.as_bytes().len(),
            bytes.len()
        );
        // And what comes back parses to the very attachments.
        let parsed = crate::direct::mime::parse(&bytes).expect("parses");
        let contents: Vec<&[u8]> = parsed.attachments.iter().map(|a| &a.content[..]).collect();
        let sent: Vec<&[u8]> = attachments.iter().map(|a| &a.content[..]).collect();
        assert_eq!(contents, sent);
    }

    #[test]
    fn plain_mime_from_before_packing_reads_as_it_is() {
        let to = ["dr.b@b.example.org".to_owned()];
        let attachments = [attachment("ccd.xml", "text/xml", ccda())];
        let mime = build(&message(&to, &attachments)).expect("builds");
        assert_eq!(unpack(mime.clone()).expect("plain"), mime);
    }

    #[test]
    fn a_damaged_value_is_an_error_not_a_panic() {
        let to = ["dr.b@b.example.org".to_owned()];
        let attachments = [attachment("ccd.xml", "text/xml", ccda())];
        let built = build_pieces(&message(&to, &attachments)).expect("builds");
        let packed = PackedMime::new(&built).as_bytes().to_vec();
        for cut in [MAGIC.len() + 1, MAGIC.len() + 5, packed.len() - 1] {
            assert!(unpack(packed[..cut].to_vec()).is_err(), "cut at {cut}");
        }
        let mut bad = packed.clone();
        bad[MAGIC.len()] = 9;
        assert!(unpack(bad).is_err());
    }
}
