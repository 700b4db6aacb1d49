//! The form of an answer: plain SOAP to a plain request, MTOM to an MTOM request or to one
//! that accepts `multipart/related`, unless `soap.mtom_responses` says always or never.

use super::*;

/// A `Login` request as `mode`, with an extra `Accept` header when given.
async fn login_reply(
    app: &TestApp,
    reseller: &(Uuid, String),
    mode: Mode,
    accept: Option<&str>,
) -> Reply {
    let (id, secret) = reseller;
    let (ct, body) = request(
        mode,
        "Login",
        &format!("<username>{id}</username><password>{secret}</password>"),
    );
    let mut req = app
        .http
        .post(app.url(PATH))
        .header("content-type", ct)
        .body(body);
    if let Some(accept) = accept {
        req = req.header("accept", accept);
    }
    let r = parse_reply(req.send().await.unwrap()).await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert_eq!(r.code(), "000", "{}", r.raw);
    r
}

/// An MTOM request whose root part is a SOAP 1.1 envelope (`start-info` text/xml).
fn mtom11(op: &str, inner: &str) -> (String, Vec<u8>) {
    let boundary = "MIMEBoundary_11";
    let body = format!(
        "--{boundary}\r\nContent-Type: application/xop+xml; charset=UTF-8; type=\"text/xml\"\r\nContent-ID: <root@c>\r\n\r\n{}\r\n--{boundary}--\r\n",
        envelope(SOAP11_NS, op, inner)
    );
    (
        format!(
            "multipart/related; boundary=\"{boundary}\"; type=\"application/xop+xml\"; start=\"<root@c>\"; start-info=\"text/xml\""
        ),
        body.into_bytes(),
    )
}

/// The answer's media type, and for MTOM the SOAP media type of its root part.
fn form(r: &Reply) -> (String, Option<String>) {
    let ct = ContentType::parse(&r.content_type);
    let inner = ct.param("start-info").map(str::to_owned);
    (ct.media, inner)
}

fn plain(media: &str) -> (String, Option<String>) {
    (media.to_owned(), None)
}

fn mtom(soap_media: &str) -> (String, Option<String>) {
    ("multipart/related".to_owned(), Some(soap_media.to_owned()))
}

#[tokio::test]
async fn answers_take_the_requests_form_by_default() {
    let app = TestApp::spawn().await;
    let reseller = app.create_client(ClientKind::Reseller).await;
    // Plain requests get plain answers in their own media type: what suds and scripts read.
    let r = login_reply(&app, &reseller, Mode::Soap11, None).await;
    assert_eq!(form(&r), plain("text/xml"));
    assert_eq!(r.envelope.ns, SOAP11_NS);
    assert!(r.raw.starts_with("<?xml"), "{}", r.raw);
    let r = login_reply(&app, &reseller, Mode::Soap12, Some("*/*")).await;
    assert_eq!(form(&r), plain("application/soap+xml"));
    assert_eq!(r.envelope.ns, SOAP12_NS);
    let r = login_reply(&app, &reseller, Mode::Soap11, Some("text/xml, multipart/*")).await;
    assert_eq!(form(&r), plain("text/xml"));
    // MTOM requests get MTOM answers, the root part in the request's SOAP version.
    let r = login_reply(&app, &reseller, Mode::Mtom, None).await;
    assert_eq!(form(&r), mtom("application/soap+xml"));
    assert_eq!(r.envelope.ns, SOAP12_NS);
    let (ct, body) = mtom11(
        "Login",
        &format!(
            "<username>{}</username><password>{}</password>",
            reseller.0, reseller.1
        ),
    );
    let r = post(&app, &ct, body).await;
    r.assert_code("000", "");
    assert_eq!(form(&r), mtom("text/xml"));
    assert_eq!(r.envelope.ns, SOAP11_NS);
    // A plain request that names multipart/related among what it accepts gets MTOM.
    let r = login_reply(
        &app,
        &reseller,
        Mode::Soap12,
        Some("application/soap+xml, multipart/related"),
    )
    .await;
    assert_eq!(form(&r), mtom("application/soap+xml"));
    let r = login_reply(&app, &reseller, Mode::Soap11, Some("multipart/related")).await;
    assert_eq!(form(&r), mtom("text/xml"));
    assert_eq!(r.envelope.ns, SOAP11_NS);
    // ...unless it refuses it.
    let r = login_reply(&app, &reseller, Mode::Soap11, Some("multipart/related;q=0")).await;
    assert_eq!(form(&r), plain("text/xml"));
}

#[tokio::test]
async fn always_and_never_override_the_request() {
    for (setting, mode, expected) in [
        (MtomResponses::Always, Mode::Soap11, mtom("text/xml")),
        (
            MtomResponses::Always,
            Mode::Soap12,
            mtom("application/soap+xml"),
        ),
        (
            MtomResponses::Never,
            Mode::Mtom,
            plain("application/soap+xml"),
        ),
    ] {
        let mut opts = TestOptions::default();
        opts.config.soap.mtom_responses = setting;
        let app = TestApp::spawn_with(opts).await;
        let reseller = app.create_client(ClientKind::Reseller).await;
        let r = login_reply(&app, &reseller, mode, None).await;
        assert_eq!(form(&r), expected, "{setting:?} {mode:?}");
        let r = login_reply(&app, &reseller, mode, Some("multipart/related")).await;
        assert_eq!(form(&r), expected, "{setting:?} {mode:?} with Accept");
    }
}
