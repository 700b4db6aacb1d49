//! Just enough DER to build the certificate extensions that rust-openssl has no builder for
//! (certificate policies, CRL distribution points, authority information access, CRL number).

fn length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
}

/// Tag, length, value.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    length(content.len(), &mut out);
    out.extend_from_slice(content);
    out
}

pub fn sequence(items: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &items.concat())
}

/// An OBJECT IDENTIFIER from its dotted form. Panics on a malformed literal: callers pass
/// constants or configuration validated at start.
pub fn oid(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u64> = dotted
        .split('.')
        .map(|a| a.parse().expect("numeric OID arc"))
        .collect();
    assert!(arcs.len() >= 2, "an OID has at least two arcs");
    let mut body = Vec::new();
    let mut push = |mut v: u64| {
        let mut chunk = vec![(v & 0x7f) as u8];
        v >>= 7;
        while v > 0 {
            chunk.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        chunk.reverse();
        body.extend(chunk);
    };
    push(arcs[0] * 40 + arcs[1]);
    for a in &arcs[2..] {
        push(*a);
    }
    tlv(0x06, &body)
}

/// True when `dotted` is a well-formed OID (so `oid` will not panic on it).
pub fn is_valid_oid(dotted: &str) -> bool {
    let arcs: Vec<&str> = dotted.split('.').collect();
    arcs.len() >= 2
        && arcs.iter().all(|a| {
            !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()) && a.parse::<u64>().is_ok()
        })
        && matches!(arcs[0], "0" | "1" | "2")
}

pub fn integer(value: u64) -> Vec<u8> {
    let mut bytes: Vec<u8> = value
        .to_be_bytes()
        .into_iter()
        .skip_while(|b| *b == 0)
        .collect();
    if bytes.first().is_none_or(|b| b & 0x80 != 0) {
        bytes.insert(0, 0);
    }
    tlv(0x02, &bytes)
}

/// A GeneralName uniformResourceIdentifier ([6] IA5String).
pub fn uri(u: &str) -> Vec<u8> {
    tlv(0x86, u.as_bytes())
}

/// certificatePolicies: one PolicyInformation (OID only) per policy.
pub fn certificate_policies(oids: &[&str]) -> Vec<u8> {
    sequence(&oids.iter().map(|o| sequence(&[oid(o)])).collect::<Vec<_>>())
}

/// cRLDistributionPoints with one full-name URI.
pub fn crl_distribution_point(url: &str) -> Vec<u8> {
    let full_name = tlv(0xa0, &uri(url));
    let distribution_point = tlv(0xa0, &full_name);
    sequence(&[sequence(&[distribution_point])])
}

/// authorityInfoAccess with one caIssuers URI.
pub fn ca_issuers(url: &str) -> Vec<u8> {
    sequence(&[sequence(&[oid("1.3.6.1.5.5.7.48.2"), uri(url)])])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_oids_and_lengths() {
        // 1.2.840.113549 is the classic textbook example.
        assert_eq!(
            oid("1.2.840.113549"),
            [0x06, 0x06, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]
        );
        assert_eq!(integer(0), [0x02, 0x01, 0x00]);
        assert_eq!(integer(128), [0x02, 0x02, 0x00, 0x80]);
        let long = tlv(0x04, &[0u8; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert!(is_valid_oid("1.3.6.1.4.1.41179.0.1.2"));
        assert!(!is_valid_oid("1.3.x"));
        assert!(!is_valid_oid("7.1"));
    }
}
