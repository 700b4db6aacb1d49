//! SOAP 1.1 and 1.2 envelopes: reading a request into its operation element, writing
//! responses and faults in the version the caller used.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::mtom::{self, Attachment, ContentType, MtomError};
use crate::xml::{self, Element};

pub const SOAP11_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const SOAP12_NS: &str = "http://www.w3.org/2003/05/soap-envelope";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoapVersion {
    V11,
    V12,
}

impl SoapVersion {
    pub fn namespace(self) -> &'static str {
        match self {
            Self::V11 => SOAP11_NS,
            Self::V12 => SOAP12_NS,
        }
    }
    pub fn media_type(self) -> &'static str {
        match self {
            Self::V11 => "text/xml",
            Self::V12 => "application/soap+xml",
        }
    }
    /// The version a request's `Content-Type` announces (used before the envelope is read,
    /// and for faults about requests we cannot read).
    pub fn from_content_type(ct: &ContentType) -> Self {
        let inner = if ct.media == "multipart/related" {
            ct.param("start-info")
                .or(ct.param("type"))
                .unwrap_or_default()
                .to_ascii_lowercase()
        } else {
            ct.media.clone()
        };
        if inner.starts_with("text/xml") {
            Self::V11
        } else {
            Self::V12
        }
    }
}

/// Who is to blame for a fault: SOAP 1.1 `Client`/`Server`, SOAP 1.2 `Sender`/`Receiver`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultCode {
    Sender,
    Receiver,
    VersionMismatch,
}

#[derive(Debug)]
pub struct Fault {
    pub version: SoapVersion,
    pub code: FaultCode,
    pub reason: String,
    /// HTTP status; SOAP 1.1 faults always travel as 500.
    pub status: StatusCode,
}

impl Fault {
    pub fn sender(version: SoapVersion, reason: impl Into<String>) -> Self {
        Self {
            version,
            code: FaultCode::Sender,
            reason: reason.into(),
            status: StatusCode::BAD_REQUEST,
        }
    }
    pub fn receiver(version: SoapVersion, reason: impl Into<String>) -> Self {
        Self {
            version,
            code: FaultCode::Receiver,
            reason: reason.into(),
            status: StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn to_xml(&self) -> String {
        let reason = xml::escape(&self.reason);
        match self.version {
            SoapVersion::V11 => {
                let code = match self.code {
                    FaultCode::Sender => "Client",
                    FaultCode::Receiver => "Server",
                    FaultCode::VersionMismatch => "VersionMismatch",
                };
                format!(
                    r#"<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="{SOAP11_NS}"><soap:Body><soap:Fault><faultcode>soap:{code}</faultcode><faultstring>{reason}</faultstring></soap:Fault></soap:Body></soap:Envelope>"#
                )
            }
            SoapVersion::V12 => {
                let code = match self.code {
                    FaultCode::Sender => "Sender",
                    FaultCode::Receiver => "Receiver",
                    FaultCode::VersionMismatch => "VersionMismatch",
                };
                format!(
                    r#"<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="{SOAP12_NS}"><soap:Body><soap:Fault><soap:Code><soap:Value>soap:{code}</soap:Value></soap:Code><soap:Reason><soap:Text xml:lang="en">{reason}</soap:Text></soap:Reason></soap:Fault></soap:Body></soap:Envelope>"#
                )
            }
        }
    }
}

impl IntoResponse for Fault {
    fn into_response(self) -> Response {
        // SOAP 1.1 carries every fault as 500, except the HTTP layer's own refusals, which
        // keep the status clients and proxies act on (retry a 503, shrink a 413).
        let status = match self.version {
            SoapVersion::V11 if !is_transport_status(self.status) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            _ => self.status,
        };
        let ct = format!("{}; charset=utf-8", self.version.media_type());
        let mut resp = (status, self.to_xml()).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(&ct).expect("static media type"),
        );
        resp
    }
}

fn is_transport_status(s: StatusCode) -> bool {
    matches!(
        s,
        StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::UNSUPPORTED_MEDIA_TYPE
            | StatusCode::REQUEST_TIMEOUT
            | StatusCode::TOO_MANY_REQUESTS
            | StatusCode::SERVICE_UNAVAILABLE
    )
}

/// A request read down to the operation element (the first child of `Body`).
#[derive(Debug)]
pub struct Request {
    pub version: SoapVersion,
    pub mtom: bool,
    pub operation: Element,
}

/// Reads a request body: plain SOAP 1.1/1.2 or MTOM. Errors are faults in the version the
/// request announced.
pub fn read(content_type: Option<&str>, body: &[u8]) -> Result<Request, Fault> {
    let ct = ContentType::parse(content_type.unwrap_or(""));
    let announced = SoapVersion::from_content_type(&ct);
    let sender = |m: String| Fault::sender(announced, m);
    let (root, mtom) = match ct.media.as_str() {
        "multipart/related" => {
            let related = mtom::parse_related(&ct, body).map_err(|e| sender(e.to_string()))?;
            let mut root = xml::parse(&related.root.body).map_err(|e| sender(e.to_string()))?;
            mtom::resolve_includes(&mut root, related.attachments)
                .map_err(|e: MtomError| sender(e.to_string()))?;
            (root, true)
        }
        "text/xml" | "application/soap+xml" => {
            (xml::parse(body).map_err(|e| sender(e.to_string()))?, false)
        }
        other => {
            return Err(sender(format!(
                "unsupported Content-Type {other:?}: send text/xml (SOAP 1.1), application/soap+xml (SOAP 1.2) or multipart/related (MTOM)"
            ))
            .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        }
    };
    let version = match root.ns.as_str() {
        SOAP11_NS => SoapVersion::V11,
        SOAP12_NS => SoapVersion::V12,
        other => {
            return Err(Fault {
                version: announced,
                code: FaultCode::VersionMismatch,
                reason: format!("{other:?} is not a SOAP 1.1 or 1.2 envelope namespace"),
                status: StatusCode::BAD_REQUEST,
            });
        }
    };
    if root.name != "Envelope" {
        return Err(Fault::sender(
            version,
            "the root element is not a SOAP Envelope",
        ));
    }
    let body = root
        .children
        .into_iter()
        .find(|c| c.name == "Body" && c.ns == version.namespace())
        .ok_or_else(|| Fault::sender(version, "the envelope has no Body"))?;
    let operation = body
        .children
        .into_iter()
        .next()
        .ok_or_else(|| Fault::sender(version, "the Body is empty"))?;
    Ok(Request {
        version,
        mtom,
        operation,
    })
}

/// Wraps a response element in an envelope and renders it, as MTOM when asked.
pub fn respond(
    version: SoapVersion,
    mtom: bool,
    payload: &str,
    attachments: Vec<Attachment>,
) -> Response {
    let envelope = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="{}"><soap:Body>{payload}</soap:Body></soap:Envelope>"#,
        version.namespace()
    );
    let (content_type, body) = if mtom {
        mtom::build(&envelope, version.media_type(), &attachments)
    } else {
        (
            format!("{}; charset=utf-8", version.media_type()),
            envelope.into_bytes(),
        )
    };
    let mut resp = Response::new(Body::from(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type).expect("header-safe content type"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_namespace_decides_the_version() {
        let doc = format!(
            r#"<e:Envelope xmlns:e="{SOAP11_NS}"><e:Header/><e:Body><op xmlns="urn:x"><a>1</a></op></e:Body></e:Envelope>"#
        );
        let r = read(Some("text/xml; charset=utf-8"), doc.as_bytes()).unwrap();
        assert_eq!(r.version, SoapVersion::V11);
        assert_eq!(
            (r.operation.ns.as_str(), r.operation.name.as_str()),
            ("urn:x", "op")
        );
        let bad = read(
            Some("text/xml"),
            b"<Envelope xmlns='urn:nope'><Body/></Envelope>",
        );
        assert_eq!(bad.unwrap_err().code, FaultCode::VersionMismatch);
        let f = read(Some("application/json"), b"{}").unwrap_err();
        assert_eq!(f.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    const FUZZ_TYPES: [&str; 4] = [
        "text/xml; charset=utf-8",
        "application/soap+xml",
        "multipart/related; type=\"application/xop+xml\"; start=\"<root>\"; start-info=\"application/soap+xml\"; boundary=\"b\"",
        "multipart/related; boundary=b",
    ];

    fn fuzz_seeds() -> Vec<Vec<u8>> {
        let login = format!(
            r#"<s:Envelope xmlns:s="{SOAP12_NS}"><s:Header/><s:Body><ns:Login xmlns:ns="urn:x"><username>u</username><password>p</password></ns:Login></s:Body></s:Envelope>"#
        );
        let mtom = format!(
            "--b\r\nContent-Type: application/xop+xml; type=\"application/soap+xml\"\r\nContent-ID: <root>\r\n\r\n{}\r\n--b\r\nContent-ID: <p@x>\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--b--\r\n",
            login.replace("<password>p</password>", r#"<password><xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:p%40x"/></password>"#)
        );
        vec![
            login.clone().into_bytes(),
            login.replace(SOAP12_NS, SOAP11_NS).into_bytes(),
            mtom.into_bytes(),
        ]
    }

    proptest::proptest! {
        #![proptest_config(crate::fuzzing::config())]

        /// Damaged SOAP and MTOM requests: a request or a fault, never a panic.
        #[test]
        fn fuzz_soap_requests_never_panic(
            ct in 0..FUZZ_TYPES.len(),
            body in crate::fuzzing::mutated(fuzz_seeds()),
        ) {
            let _ = read(Some(FUZZ_TYPES[ct]), &body);
        }
    }
}
