//! DNS messages over TCP (RFC 1035 §4.2.2, RFC 7766 §8: a two-byte length before
//! each message), optionally signed with TSIG (RFC 8945), with a timeout on every
//! network step. Connections are reused from one exchange to the next
//! ([`crate::dns::connections`]); a zone transfer (RFC 5936 §2.2) reads messages
//! until the closing SOA and verifies the TSIG of each one (RFC 8945 §5.3.1).
//! Errors become [`ProviderError`]s naming server, zone and cause; the TSIG
//! secret never appears in them.

use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::tsig::TsigError;
use hickory_proto::rr::{self as hrr, TSigVerifier, TSigner};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::dns::connections::{self, ConnectError, Connection, Open};
use crate::dns::error::ProviderError;

/// Why reading an answer failed.
enum Received {
    Timeout(ProviderError),
    Io(io::Error),
}

/// The errors of a connection the server had closed before the message arrived.
fn closed_by_peer(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// The time each network step (connect, send, every read) may take.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a message goes and what it is about, for log lines and errors.
#[derive(Clone, Debug)]
pub(crate) struct Exchange {
    /// Host name or address.
    pub host: String,
    pub port: u16,
    /// The zone the exchange is about (empty when not known yet).
    pub zone: String,
    /// Short name of the operation for errors: `UPDATE`, `AXFR`, `SOA query`.
    pub what: String,
    /// The log line's text after `sent`, e.g. `QUERY SOA example.com`.
    pub detail: String,
    /// Prefix of the debug log line (`rfc2136`, `observe`).
    pub log_prefix: &'static str,
    pub timeout: Duration,
}

impl Exchange {
    /// `host:port`, with brackets around an IPv6 address.
    pub(crate) fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    fn protocol(&self, reason: impl Into<String>) -> ProviderError {
        ProviderError::Protocol {
            server: self.server(),
            reason: reason.into(),
        }
    }

    fn timed_out(&self, step: &str) -> ProviderError {
        ProviderError::Timeout {
            server: self.server(),
            seconds: self.timeout.as_secs().max(1),
            what: format!("{} {step}", self.what),
        }
    }

    async fn within<T>(
        &self,
        step: &str,
        fut: impl Future<Output = io::Result<T>>,
    ) -> Result<io::Result<T>, ProviderError> {
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| self.timed_out(step))
    }

    /// Sends one message and returns the checked answer (TSIG verified when
    /// `signer` is given). The answer's rcode is left to the caller; see
    /// [`rcode_error`].
    ///
    /// # Errors
    /// Unreachable server, timeout, malformed answer, TSIG error or an answer whose
    /// TSIG does not verify.
    pub(crate) async fn exchange(
        &self,
        message: Message,
        signer: Option<&TSigner>,
    ) -> Result<Message, ProviderError> {
        let (connection, first, mut verifier, id) = self.send(message, signer).await?;
        let answer = self.check(&first, id, signer, verifier.as_mut())?;
        // The answer is complete: the connection can carry the next exchange.
        connection.release();
        Ok(answer)
    }

    /// Sends an AXFR query and returns the records of the transfer without the
    /// closing SOA (RFC 5936 §2.2). Every message must have rcode NOERROR and, when
    /// signed, a valid TSIG chained to the previous one.
    ///
    /// # Errors
    /// As [`Exchange::exchange`], and the rcode of a failing message.
    pub(crate) async fn transfer(
        &self,
        message: Message,
        signer: Option<&TSigner>,
    ) -> Result<Vec<hrr::Record>, ProviderError> {
        let (mut connection, first, mut verifier, id) = self.send(message, signer).await?;
        let mut bytes = first;
        let mut records = Vec::new();
        let mut soas = 0;
        loop {
            let answer = self.check(&bytes, id, signer, verifier.as_mut())?;
            if answer.response_code != ResponseCode::NoError {
                return Err(rcode_error(self, &answer, signer));
            }
            if answer.answers.is_empty() {
                return Err(self.protocol("zone transfer message without records"));
            }
            for record in answer.answers {
                let is_soa = record.record_type() == hrr::RecordType::SOA;
                if records.is_empty() && !is_soa {
                    return Err(self.protocol("zone transfer does not start with the SOA"));
                }
                if is_soa {
                    soas += 1;
                }
                if soas == 2 {
                    // The closing SOA ends the last message of the transfer.
                    connection.release();
                    return Ok(records);
                }
                records.push(record);
            }
            bytes = self
                .receive(&mut connection.stream)
                .await
                .map_err(|e| self.read_failed(e))?;
        }
    }

    /// Signs and sends the message on a pooled connection and reads the first
    /// answer message. A reused connection that the server has closed meanwhile
    /// fails before the first byte of the answer; then the message goes once more,
    /// signed anew, on a new connection. Repeating it is harmless: the server has
    /// not read it (it answers what it reads before it closes), and an UPDATE
    /// without prerequisites applied twice changes nothing the second time.
    async fn send(
        &self,
        message: Message,
        signer: Option<&TSigner>,
    ) -> Result<(Connection, Vec<u8>, Option<TSigVerifier>, u16), ProviderError> {
        let mut open = Open::ReuseOrNew;
        loop {
            let (framed, verifier, id) = self.frame(message.clone(), signer)?;
            let mut connection = self.connect(open).await?;
            let sent = self
                .within("send", connection.stream.write_all(&framed))
                .await?;
            let send_failed = sent.is_err();
            let answer = match sent {
                Ok(()) => {
                    log::debug!(
                        "{}: sent {} to {}",
                        self.log_prefix,
                        self.detail,
                        self.server()
                    );
                    self.receive(&mut connection.stream).await
                }
                Err(e) => Err(Received::Io(e)),
            };
            match answer {
                Ok(bytes) => return Ok((connection, bytes, verifier, id)),
                Err(Received::Io(e)) if connection.reused && closed_by_peer(&e) => {
                    open = Open::New;
                }
                Err(Received::Io(e)) if send_failed => {
                    return Err(ProviderError::Unreachable {
                        server: self.server(),
                        reason: format!("sending the {}: {e}", self.what),
                    });
                }
                Err(e) => return Err(self.read_failed(e)),
            }
        }
    }

    /// The message signed (when `signer` is given) and framed with its length.
    fn frame(
        &self,
        mut message: Message,
        signer: Option<&TSigner>,
    ) -> Result<(Vec<u8>, Option<TSigVerifier>, u16), ProviderError> {
        let verifier = match signer {
            Some(signer) => message
                .finalize(signer, unix_now())
                .map_err(|e| self.protocol(format!("cannot sign the {}: {e}", self.what)))?,
            None => None,
        };
        let bytes = message
            .to_vec()
            .map_err(|e| self.protocol(format!("cannot encode the {}: {e}", self.what)))?;
        let length = u16::try_from(bytes.len()).map_err(|_| {
            self.protocol(format!(
                "the {} is {} bytes, more than one DNS message can hold",
                self.what,
                bytes.len()
            ))
        })?;
        let mut framed = Vec::with_capacity(bytes.len() + 2);
        framed.extend_from_slice(&length.to_be_bytes());
        framed.extend_from_slice(&bytes);
        Ok((framed, verifier, message.id))
    }

    async fn connect(&self, open: Open) -> Result<Connection, ProviderError> {
        connections::lend(&self.host, self.port, open, self.timeout)
            .await
            .map_err(|e| match e {
                ConnectError::Timeout => self.timed_out("connect"),
                ConnectError::Io(e) => ProviderError::Unreachable {
                    server: self.server(),
                    reason: e.to_string(),
                },
            })
    }

    /// Reads one length-prefixed message.
    async fn receive(&self, stream: &mut TcpStream) -> Result<Vec<u8>, Received> {
        let mut length = [0u8; 2];
        self.within("answer", stream.read_exact(&mut length))
            .await
            .map_err(Received::Timeout)?
            .map_err(Received::Io)?;
        let mut bytes = vec![0u8; usize::from(u16::from_be_bytes(length))];
        self.within("answer", stream.read_exact(&mut bytes))
            .await
            .map_err(Received::Timeout)?
            .map_err(Received::Io)?;
        Ok(bytes)
    }

    fn read_failed(&self, failure: Received) -> ProviderError {
        match failure {
            Received::Timeout(e) => e,
            Received::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => self.protocol(format!(
                "the connection closed before the answer to the {} was complete",
                self.what
            )),
            Received::Io(e) => ProviderError::Unreachable {
                server: self.server(),
                reason: format!("reading the answer to the {}: {e}", self.what),
            },
        }
    }

    /// Parses an answer, checks its id, its TSIG error field and its signature.
    fn check(
        &self,
        bytes: &[u8],
        id: u16,
        signer: Option<&TSigner>,
        verifier: Option<&mut TSigVerifier>,
    ) -> Result<Message, ProviderError> {
        let answer = Message::from_vec(bytes)
            .map_err(|e| self.protocol(format!("cannot parse the answer: {e}")))?;
        if answer.id != id || answer.message_type != MessageType::Response {
            return Err(self.protocol(format!(
                "the answer does not belong to the {} (id {} instead of {id})",
                self.what, answer.id
            )));
        }
        if let Some(error) = answer.signature.as_ref().and_then(|sig| sig.data.error) {
            return Err(bad_tsig(self, signer, tsig_error_text(error)));
        }
        if let Some(verifier) = verifier
            && let Err(e) = verifier.verify(bytes)
        {
            if !matches!(
                answer.response_code,
                ResponseCode::NoError | ResponseCode::NXDomain
            ) {
                return Err(rcode_error(self, &answer, signer));
            }
            return Err(self.protocol(format!(
                "the TSIG signature of the answer to the {} does not verify: {e}",
                self.what
            )));
        }
        Ok(answer)
    }
}

/// The error for an answer whose rcode is not a success: REFUSED → `Refused`,
/// NOTAUTH/NOTZONE → `NotAuthoritative` (or `BadTsig` when a TSIG error is set),
/// BADSIG/BADKEY/BADTIME → `BadTsig`, anything else → `ServerError`.
pub(crate) fn rcode_error(
    exchange: &Exchange,
    answer: &Message,
    signer: Option<&TSigner>,
) -> ProviderError {
    let tsig_error = answer.signature.as_ref().and_then(|sig| sig.data.error);
    match (answer.response_code, tsig_error) {
        (_, Some(error)) => bad_tsig(exchange, signer, tsig_error_text(error)),
        (ResponseCode::Refused, None) => ProviderError::Refused {
            server: exchange.server(),
            zone: exchange.zone.clone(),
            what: exchange.what.clone(),
        },
        (ResponseCode::NotAuth | ResponseCode::NotZone, None) => ProviderError::NotAuthoritative {
            server: exchange.server(),
            zone: exchange.zone.clone(),
        },
        (code @ (ResponseCode::BADSIG | ResponseCode::BADKEY | ResponseCode::BADTIME), None) => {
            bad_tsig(exchange, signer, code.to_string())
        }
        (code, None) => ProviderError::ServerError {
            server: exchange.server(),
            zone: exchange.zone.clone(),
            what: exchange.what.clone(),
            rcode: code.to_string(),
        },
    }
}

/// True for a TSIG error whose TSIG error field was BADKEY.
pub(crate) fn is_bad_key(error: &ProviderError) -> bool {
    matches!(error, ProviderError::BadTsig { reason, .. } if reason.starts_with(BADKEY))
}

const BADKEY: &str = "BADKEY";

fn bad_tsig(exchange: &Exchange, signer: Option<&TSigner>, reason: String) -> ProviderError {
    ProviderError::BadTsig {
        server: exchange.server(),
        key: signer.map_or_else(|| "(none)".to_string(), |s| s.signer_name().to_string()),
        reason,
    }
}

fn tsig_error_text(error: TsigError) -> String {
    match error {
        TsigError::BadSig => "BADSIG: the signature does not match the secret".into(),
        TsigError::BadKey => {
            format!("{BADKEY}: the server does not know this key and algorithm")
        }
        TsigError::BadTime => "BADTIME: the clocks differ by more than the fudge".into(),
        TsigError::BadTrunc => "BADTRUNC".into(),
        TsigError::Unknown(code) => format!("TSIG error {code}"),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::OpCode;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn exchange() -> Exchange {
        Exchange {
            host: "::1".into(),
            port: 5353,
            zone: "example.com".into(),
            what: "UPDATE".into(),
            detail: "UPDATE example.com (1 adds, 0 deletes)".into(),
            log_prefix: "test",
            timeout: DEFAULT_TIMEOUT,
        }
    }

    fn answer(code: ResponseCode) -> Message {
        let mut message = Message::response(1, OpCode::Update);
        message.metadata.response_code = code;
        message
    }

    #[test]
    fn server_label_brackets_ipv6() {
        assert_eq!(exchange().server(), "[::1]:5353");
    }

    #[test]
    fn rcodes_map_to_errors() {
        let x = exchange();
        let err = |code| rcode_error(&x, &answer(code), None);
        assert!(matches!(
            err(ResponseCode::Refused),
            ProviderError::Refused { .. }
        ));
        assert!(matches!(
            err(ResponseCode::NotAuth),
            ProviderError::NotAuthoritative { .. }
        ));
        assert!(matches!(
            err(ResponseCode::NotZone),
            ProviderError::NotAuthoritative { .. }
        ));
        assert!(matches!(
            err(ResponseCode::BADSIG),
            ProviderError::BadTsig { .. }
        ));
        match err(ResponseCode::ServFail) {
            ProviderError::ServerError { rcode, zone, .. } => {
                assert_eq!(zone, "example.com");
                assert!(
                    rcode.contains("Server Failure") || rcode.contains("SERVFAIL"),
                    "{rcode}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn closed_port_is_unreachable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let x = Exchange {
            host: "127.0.0.1".into(),
            port,
            ..exchange()
        };
        let err = x.exchange(Message::query(), None).await.unwrap_err();
        assert!(matches!(err, ProviderError::Unreachable { .. }), "{err}");
    }

    /// Reads one query from `stream` and answers it NOERROR, without a TSIG.
    async fn answer_one(stream: &mut TcpStream) {
        let mut length = [0u8; 2];
        stream.read_exact(&mut length).await.unwrap();
        let mut query = vec![0u8; usize::from(u16::from_be_bytes(length))];
        stream.read_exact(&mut query).await.unwrap();
        let query = Message::from_vec(&query).unwrap();
        let answer = Message::response(query.id, query.op_code).to_vec().unwrap();
        let mut framed = u16::try_from(answer.len()).unwrap().to_be_bytes().to_vec();
        framed.extend_from_slice(&answer);
        stream.write_all(&framed).await.unwrap();
    }

    /// A server that answers NOERROR without a TSIG to a signed query.
    async fn unsigned_server() -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            answer_one(&mut stream).await;
        });
        port
    }

    #[tokio::test]
    async fn an_answer_that_does_not_verify_is_an_error() {
        let port = unsigned_server().await;
        let x = Exchange {
            host: "127.0.0.1".into(),
            port,
            ..exchange()
        };
        let signer = TSigner::new(
            b"0123456789abcdef".to_vec(),
            hickory_proto::rr::rdata::tsig::TsigAlgorithm::HmacSha256,
            hrr::Name::from_ascii("key.").unwrap(),
            300,
        )
        .unwrap();
        let err = x
            .exchange(Message::query(), Some(&signer))
            .await
            .unwrap_err();
        match &err {
            ProviderError::Protocol { reason, .. } => {
                assert!(reason.contains("does not verify"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert!(!format!("{err:?}").contains("0123456789abcdef"));
    }

    /// A server that answers the first message of each connection, and closes the
    /// connection when the second one arrives (as a server does that timed out an
    /// idle connection just as the client reused it). Counts its connections.
    async fn one_answer_per_connection_server() -> (u16, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    answer_one(&mut stream).await;
                    let _ = stream.read_exact(&mut [0u8; 2]).await;
                });
            }
        });
        (port, accepted)
    }

    #[tokio::test]
    async fn a_reused_connection_closed_by_the_server_is_retried_on_a_new_one() {
        let (port, accepted) = one_answer_per_connection_server().await;
        let x = Exchange {
            host: "127.0.0.1".into(),
            port,
            ..exchange()
        };
        x.exchange(Message::query(), None).await.unwrap();
        x.exchange(Message::query(), None).await.unwrap();
        // The second exchange went out on the first connection, found it closed
        // and was sent again on a second one.
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn silent_server_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let x = Exchange {
            host: "127.0.0.1".into(),
            port,
            timeout: Duration::from_millis(200),
            ..exchange()
        };
        let err = x.exchange(Message::query(), None).await.unwrap_err();
        assert!(matches!(err, ProviderError::Timeout { .. }), "{err}");
        drop(listener);
    }
}
