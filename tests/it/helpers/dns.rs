//! An authoritative DNS server in the test process (hickory-server), answering from records the
//! test builds, on 127.0.0.1 UDP and TCP on one port. Real DNS on the wire: UDP answers larger
//! than the client's buffer (512 bytes, or its EDNS size) go out truncated, so the client must
//! ask again over TCP.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::{Edns, Metadata, ResponseCode};
use hickory_server::proto::rr::rdata::cert::{Algorithm, CERT, CertType};
use hickory_server::proto::rr::rdata::{A, AAAA, MX, TXT};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

/// A question the server was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    /// Lower case, without the trailing dot.
    pub name: String,
    pub kind: RecordType,
    pub tcp: bool,
}

#[derive(Default)]
struct Zone {
    records: Mutex<Vec<Record>>,
    asked: Mutex<Vec<Asked>>,
}

pub struct TestDns {
    pub addr: SocketAddr,
    zone: Arc<Zone>,
    _server: Server<Handler>,
}

impl TestDns {
    pub async fn start(records: Vec<Record>) -> Self {
        let zone = Arc::new(Zone::default());
        *zone.records.lock().unwrap() = records;
        // One port for both transports: take a free TCP port, then the same number for UDP.
        let (tcp, udp) = loop {
            let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = tcp.local_addr().unwrap();
            if let Ok(udp) = tokio::net::UdpSocket::bind(addr).await {
                break (tcp, udp);
            }
        };
        let addr = tcp.local_addr().unwrap();
        let mut server = Server::new(Handler { zone: zone.clone() });
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 64 * 1024);
        Self {
            addr,
            zone,
            _server: server,
        }
    }

    /// Replaces every record; the next question is answered from `records`.
    pub fn set(&self, records: Vec<Record>) {
        *self.zone.records.lock().unwrap() = records;
    }

    /// The questions asked so far, in order.
    pub fn asked(&self) -> Vec<Asked> {
        self.zone.asked.lock().unwrap().clone()
    }

    /// `[dns]` settings that ask only this server.
    pub fn config(&self, timeout: Duration) -> hisp_gateway::config::DnsConfig {
        let mut c = hisp_gateway::config::Config::defaults().dns;
        c.nameservers = vec![self.addr];
        c.timeout = timeout;
        c
    }
}

struct Handler {
    zone: Arc<Zone>,
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let builder_edns;
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(asked) = &request.edns {
            let mut e = Edns::new();
            e.set_max_payload(asked.max_payload().max(512));
            builder_edns = e;
            builder.edns(&builder_edns);
        }
        let Ok(info) = request.request_info() else {
            let response = builder.error_msg(&request.metadata, ResponseCode::FormErr);
            return response_handle.send_response(response).await.unwrap();
        };
        let qname = lower(info.query.original().name());
        let qtype = info.query.query_type();
        self.zone.asked.lock().unwrap().push(Asked {
            name: qname.clone(),
            kind: qtype,
            tcp: info.protocol == Protocol::Tcp,
        });
        let (answers, exists) = {
            let records = self.zone.records.lock().unwrap();
            let at_name: Vec<&Record> =
                records.iter().filter(|r| lower(&r.name) == qname).collect();
            let answers: Vec<Record> = at_name
                .iter()
                .filter(|r| r.record_type() == qtype)
                .map(|r| (*r).clone())
                .collect();
            (answers, !at_name.is_empty())
        };
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        metadata.response_code = if exists {
            ResponseCode::NoError
        } else {
            ResponseCode::NXDomain
        };
        let response = builder.build(metadata, answers.iter(), [], [], []);
        response_handle.send_response(response).await.unwrap()
    }
}

fn lower(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

fn name(s: &str) -> Name {
    let mut n = Name::from_ascii(s).unwrap();
    n.set_fqdn(true);
    n
}

/// Records live zero seconds: a changed record is the next answer, never a cached one.
fn record(owner: &str, data: RData) -> Record {
    Record::from_rdata(name(owner), 0, data)
}

pub fn a(owner: &str, ip: &str) -> Record {
    match ip.parse::<IpAddr>().unwrap() {
        IpAddr::V4(v4) => record(owner, RData::A(A(v4))),
        IpAddr::V6(v6) => record(owner, RData::AAAA(AAAA(v6))),
    }
}

pub fn mx(owner: &str, preference: u16, exchange: &str) -> Record {
    let exchange = if exchange == "." {
        Name::root()
    } else {
        name(exchange)
    };
    record(owner, RData::MX(MX::new(preference, exchange)))
}

pub fn txt(owner: &str, text: &str) -> Record {
    record(owner, RData::TXT(TXT::new(vec![text.to_owned()])))
}

/// A CERT record of any type (1 PKIX: DER; 4 IPKIX: a URL).
pub fn cert(owner: &str, cert_type: u16, data: &[u8]) -> Record {
    record(
        owner,
        RData::CERT(CERT::new(
            CertType::from(cert_type),
            0,
            Algorithm::from(0),
            data.to_vec(),
        )),
    )
}

/// A UDP and TCP port on 127.0.0.1 that takes questions and never answers.
pub struct SilentDns {
    pub addr: SocketAddr,
    _udp: tokio::net::UdpSocket,
    _tcp: tokio::net::TcpListener,
}

impl SilentDns {
    pub async fn start() -> Self {
        loop {
            let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = tcp.local_addr().unwrap();
            if let Ok(udp) = tokio::net::UdpSocket::bind(addr).await {
                return Self {
                    addr,
                    _udp: udp,
                    _tcp: tcp,
                };
            }
        }
    }
}
