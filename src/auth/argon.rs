//! argon2id hashing and verification, a bounded number at once, in memory kept for reuse.
//!
//! One argon2id check costs about 20 ms of CPU and 19 MiB of memory (the default parameters,
//! which every stored hash here uses). Run freely in parallel, a few hundred wrong secrets at
//! once took the gateway from 114 MiB to 5.7 GiB, which the allocator then kept. Here at most
//! one check per core runs at once, each in a memory area kept for the next check, so the
//! memory argon2 takes never exceeds one area per core, whatever arrives. A request that cannot get a slot
//! within `WAIT` is told the gateway is busy (503 with Retry-After) rather than piling up.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use rand::RngCore;
use tokio::sync::Semaphore;

/// Longest a check waits for a free slot before the caller is answered "busy".
pub const WAIT: Duration = Duration::from_secs(2);
/// Largest memory cost (KiB) a stored hash may ask for; more is refused rather than allocated.
const MAX_M_COST: u32 = 256 * 1024;

/// No slot was free within `WAIT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many password checks in progress")]
pub struct Busy;

struct Pool {
    slots: Semaphore,
    /// Memory areas not in use. One is made the first time a slot finds none here, so there
    /// are never more than slots, and a gateway that never checks two secrets at once holds
    /// one.
    areas: Mutex<Vec<Vec<Block>>>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        slots: Semaphore::new(crate::cpu::slots()),
        areas: Mutex::new(Vec::new()),
    })
}

/// Runs `f` with a memory area once a slot is free (at most `WAIT`), on the blocking pool.
async fn with_slot<T: Send + 'static>(
    f: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
) -> Result<T, Busy> {
    let pool = pool();
    let permit = match tokio::time::timeout(WAIT, pool.slots.acquire()).await {
        Ok(Ok(p)) => p,
        _ => {
            metrics::counter!("gateway_auth_busy_total").increment(1);
            return Err(Busy);
        }
    };
    // The permit moves into the task: a caller that gives up does not free the slot before
    // the computation really ends.
    let joined = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let spare = pool.areas.lock().expect("argon2 memory lock").pop();
        let mut area =
            spare.unwrap_or_else(|| vec![Block::default(); Params::default().block_count()]);
        let out = f(&mut area);
        pool.areas.lock().expect("argon2 memory lock").push(area);
        out
    })
    .await;
    match joined {
        Ok(out) => Ok(out),
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// The argon2id PHC string of `secret` with a fresh salt (default parameters).
pub async fn hash(secret: String) -> Result<String, Busy> {
    with_slot(move |area| hash_with(&secret, area)).await
}

/// Whether `secret` matches the PHC string `phc`. A string we cannot read matches nothing.
pub async fn verify(secret: String, phc: String) -> Result<bool, Busy> {
    with_slot(move |area| verify_with(&secret, &phc, area)).await
}

/// Hashes many secrets (a provisioning batch), one slot at a time so that logins interleave.
/// Stops early, with `Err`, when a slot cannot be had.
pub async fn hash_all(secrets: Vec<String>) -> Result<Vec<String>, Busy> {
    let mut out = Vec::with_capacity(secrets.len());
    for s in secrets {
        out.push(hash(s).await?);
    }
    Ok(out)
}

fn hash_with(secret: &str, area: &mut [Block]) -> String {
    let params = Params::default();
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(
            secret.as_bytes(),
            &salt,
            &mut out,
            &mut area[..params.block_count()],
        )
        .expect("default parameters and a 16-byte salt are valid");
    format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out)
    )
}

/// The parts of `$argon2id$v=19$m=…,t=…,p=…$salt$hash`.
struct Phc {
    params: Params,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

fn parse_phc(phc: &str) -> Option<Phc> {
    let mut parts = phc.split('$');
    let (empty, alg, version, params, salt, hash) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if !empty.is_empty() || alg != "argon2id" || version != "v=19" || parts.next().is_some() {
        return None;
    }
    let (mut m, mut t, mut p) = (None, None, None);
    for kv in params.split(',') {
        let (k, v) = kv.split_once('=')?;
        let v: u32 = v.parse().ok()?;
        match k {
            "m" => m = Some(v),
            "t" => t = Some(v),
            "p" => p = Some(v),
            _ => return None,
        }
    }
    let m = m.filter(|m| *m <= MAX_M_COST)?;
    let hash = STANDARD_NO_PAD.decode(hash).ok()?;
    let params = Params::new(m, t?, p?, Some(hash.len())).ok()?;
    Some(Phc {
        params,
        salt: STANDARD_NO_PAD.decode(salt).ok()?,
        hash,
    })
}

fn verify_with(secret: &str, phc: &str, area: &mut Vec<Block>) -> bool {
    let Some(phc) = parse_phc(phc) else {
        return false;
    };
    let blocks = phc.params.block_count();
    if area.len() < blocks {
        // Not a hash of ours (every one uses the default parameters): paid for once.
        area.resize(blocks, Block::default());
    }
    let mut out = vec![0u8; phc.hash.len()];
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, phc.params);
    argon
        .hash_password_into_with_memory(secret.as_bytes(), &phc.salt, &mut out, &mut area[..blocks])
        .is_ok()
        && openssl::memcmp::eq(&out, &phc.hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    fn area() -> Vec<Block> {
        vec![Block::default(); Params::default().block_count()]
    }

    #[test]
    fn our_hashes_and_the_crates_are_the_same_format() {
        let ours = hash_with("correct horse", &mut area());
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", ours.as_str())
                .is_ok(),
            "{ours}"
        );
        let theirs = Argon2::default()
            .hash_password(b"battery staple")
            .unwrap()
            .to_string();
        assert!(verify_with("battery staple", &theirs, &mut area()));
        assert!(!verify_with("battery stapler", &theirs, &mut area()));
        assert!(!verify_with("x", "not a hash", &mut area()));
        assert!(!verify_with(
            "x",
            "$argon2id$v=19$m=99999999,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            &mut area()
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn checks_beyond_the_slots_wait_and_all_complete() {
        let phc = hash("s3cret".into()).await.unwrap();
        let checks: Vec<_> = (0..crate::cpu::slots() * 3)
            .map(|i| {
                let phc = phc.clone();
                tokio::spawn(async move {
                    verify(if i % 2 == 0 { "s3cret" } else { "nope" }.into(), phc).await
                })
            })
            .collect();
        for (i, c) in checks.into_iter().enumerate() {
            assert_eq!(c.await.unwrap(), Ok(i % 2 == 0));
        }
    }
}
