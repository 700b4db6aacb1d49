//! One GET of a URL a peer or an operator gave us (a trust bundle, a CRL): through the egress
//! guard, within the configured time, and refused past the size cap.

use super::TrustContext;

/// Fetches `url`; the error is a sentence for operators (it names no PHI, only the URL's fate).
pub async fn get(ctx: &TrustContext, url: &str) -> Result<Vec<u8>, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("only http and https URLs are fetched".into());
    }
    ctx.egress.check_url(&parsed).map_err(|r| r.to_string())?;
    let mut resp = ctx
        .client
        .get(parsed)
        .send()
        .await
        .map_err(|e| describe(&e))?;
    if !resp.status().is_success() {
        return Err(format!("the server answered {}", resp.status()));
    }
    let cap = ctx.max_fetch_bytes;
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(format!("larger than the limit of {cap} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| describe(&e))? {
        if body.len() + chunk.len() > cap {
            return Err(format!("larger than the limit of {cap} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn describe(e: &reqwest::Error) -> String {
    if let Some(r) = crate::egress::refusal_in(e) {
        return r.to_string();
    }
    if e.is_timeout() {
        return "the fetch timed out".into();
    }
    if e.is_connect() {
        return "could not connect".into();
    }
    format!("the fetch failed: {e}")
}
