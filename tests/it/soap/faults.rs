//! Requests we cannot read get SOAP faults in the caller's version; hostile XML is refused
//! without expanding anything.

use super::*;

async fn raw(app: &TestApp, content_type: &str, body: &str) -> Reply {
    post(app, content_type, body.as_bytes().to_vec()).await
}

const V11: &str = "text/xml; charset=utf-8";
const V12: &str = "application/soap+xml; charset=utf-8";

#[tokio::test]
async fn unreadable_requests_are_faults_in_the_callers_soap_version() {
    let f = Fixture::new().await;
    let app = &f.app;
    // Malformed XML.
    let r = raw(
        app,
        V11,
        "<soap:Envelope xmlns:soap='http://schemas.xmlsoap.org/soap/envelope/'><soap:Body>",
    )
    .await;
    assert_eq!(r.status, 500, "SOAP 1.1 faults travel as 500");
    assert_eq!(r.fault_code(), "soap:Client");
    assert!(
        r.fault_reason().contains("malformed"),
        "{}",
        r.fault_reason()
    );
    let r = raw(app, V12, "<a><b></a>").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.fault_code(), "soap:Sender");
    assert!(r.content_type.starts_with("application/soap+xml"));

    // Unknown namespace and unknown operation.
    let wrong_ns = envelope(SOAP12_NS, "Login", "").replace(NS, "urn:somebody-else");
    let r = raw(app, V12, &wrong_ns).await;
    assert_eq!(r.fault_code(), "soap:Sender");
    assert!(r.fault_reason().contains("urn:somebody-else"));
    for mode in MODES {
        let (ct, body) = request(mode, "DeleteEverything", "");
        let r = post(app, &ct, body).await;
        assert!(
            r.fault_reason()
                .contains("unknown operation DeleteEverything"),
            "{mode:?}"
        );
        let expected = if mode == Mode::Soap11 {
            "soap:Client"
        } else {
            "soap:Sender"
        };
        assert_eq!(r.fault_code(), expected);
    }
    // Not an envelope at all, and not SOAP at all.
    let r = raw(
        app,
        V12,
        "<Envelope xmlns='urn:not-soap'><Body/></Envelope>",
    )
    .await;
    assert_eq!(r.fault_code(), "soap:VersionMismatch");
    let r = raw(app, "application/json", "{}").await;
    assert_eq!(r.status, 415);
    assert_eq!(r.fault_code(), "soap:Sender");
    // An MTOM request whose Include points at nothing.
    let broken = "--b\r\nContent-Type: application/xop+xml; type=\"application/soap+xml\"\r\n\r\n"
        .to_owned()
        + &envelope(
            SOAP12_NS,
            "Login",
            "<username><xop:Include xmlns:xop=\"http://www.w3.org/2004/08/xop/include\" href=\"cid:missing\"/></username>",
        )
        + "\r\n--b--\r\n";
    let r = raw(app, "multipart/related; boundary=b; type=\"application/xop+xml\"; start-info=\"application/soap+xml\"", &broken).await;
    assert!(
        r.fault_reason().contains("cid:missing"),
        "{}",
        r.fault_reason()
    );
}

#[tokio::test]
async fn entities_doctypes_and_deep_nesting_are_refused() {
    let f = Fixture::new().await;
    let app = &f.app;
    let (id, secret) = &f.reseller;
    let xxe = format!(
        r#"<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><soap:Envelope xmlns:soap="{SOAP12_NS}"><soap:Body><r:Login xmlns:r="{NS}"><username>&xxe;</username><password>{secret}</password></r:Login></soap:Body></soap:Envelope>"#
    );
    let laughs = format!(
        r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><soap:Envelope xmlns:soap="{SOAP12_NS}"><soap:Body><r:Login xmlns:r="{NS}"><username>{id}&lol3;</username><password>{secret}</password></r:Login></soap:Body></soap:Envelope>"#
    );
    for doc in [&xxe, &laughs] {
        let r = raw(app, V12, doc).await;
        assert_eq!(r.status, 400);
        assert_eq!(r.fault_code(), "soap:Sender");
        assert!(r.fault_reason().contains("DOCTYPE"), "{}", r.fault_reason());
        assert!(!r.raw.contains("root:"), "nothing from /etc/passwd");
        assert!(!r.raw.contains("lollol"));
    }
    // An entity that was never declared (no DOCTYPE at all) is refused as well.
    let undeclared = envelope(
        SOAP12_NS,
        "Login",
        "<username>&ext;</username><password>x</password>",
    );
    let r = raw(app, V12, &undeclared).await;
    assert!(r.fault_reason().contains("&ext;"), "{}", r.fault_reason());
    // Deep nesting.
    let deep = envelope(
        SOAP11_NS,
        "Login",
        &format!("{}{}", "<x>".repeat(64), "</x>".repeat(64)),
    );
    let r = raw(app, V11, &deep).await;
    assert_eq!(r.fault_code(), "soap:Client");
    assert!(r.fault_reason().contains("nesting"), "{}", r.fault_reason());
    // No session was created by any of it.
    assert_eq!(
        crate::helpers::count(&app.db.pool, "soap_sessions").await,
        0
    );
}

#[tokio::test]
async fn an_oversize_body_is_a_fault_before_it_is_read() {
    let mut opts = TestOptions::default();
    opts.config.http.body_limit_bytes = 64 * 1024;
    let app = TestApp::spawn_with(opts).await;
    let big = envelope(
        SOAP12_NS,
        "Login",
        &format!("<username>{}</username>", "x".repeat(100 * 1024)),
    );
    let r = raw(&app, V12, &big).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.fault_code(), "soap:Sender");
    assert!(r.fault_reason().contains("65536"), "{}", r.fault_reason());
    // Streamed without a length, the limit still holds.
    let stream = futures_stream(big.into_bytes());
    let resp = app
        .http
        .post(app.url(PATH))
        .header("content-type", V11)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    let r = parse_reply(resp).await;
    // SOAP 1.1 faults travel as 500, but the HTTP layer's refusals keep their status.
    assert_eq!(r.status, 413);
    assert_eq!(r.fault_code(), "soap:Client");
    assert!(r.fault_reason().contains("larger than the limit"));
}

fn futures_stream(
    data: Vec<u8>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        data.chunks(8192).map(|c| Ok(c.to_vec())).collect();
    tokio_stream::iter(chunks)
}

#[tokio::test]
async fn a_request_over_the_time_limit_is_our_fault() {
    let mut opts = TestOptions::default();
    // Zero: the first database wait of any operation runs out of time.
    opts.config.http.request_timeout = std::time::Duration::ZERO;
    let app = TestApp::spawn_with(opts).await;
    let login = "<username>00000000-0000-0000-0000-000000000000</username><password>x</password>";
    let (ct, body) = request(Mode::Soap12, "Login", login);
    let r = post(&app, &ct, body).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.fault_code(), "soap:Receiver");
    assert!(
        r.fault_reason().contains("did not complete"),
        "{}",
        r.fault_reason()
    );
    // SOAP 1.1 too: a timeout is a 503 clients and proxies may retry, not a 500.
    let (ct, body) = request(Mode::Soap11, "Login", login);
    let r = post(&app, &ct, body).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.fault_code(), "soap:Server");
}
