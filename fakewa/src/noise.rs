//! The server (responder) side of WhatsApp's Noise handshake, and the framed, counter-nonced AES-GCM
//! transport that follows it. Mirrors what `wacore-noise` does on the client side.

use anyhow::{Context, anyhow, bail};
use buffa::Message as _;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use wacore_binary::consts::{NOISE_PATTERN_IK, NOISE_PATTERN_XX, NOISE_PATTERN_XXFALLBACK, WA_CONN_HEADER};
use wacore_libsignal::protocol::KeyPair;
use wacore_noise::framing::{FrameDecoder, encode_frame};
use wacore_noise::{NoiseCipher, NoiseHandshake};
use waproto::whatsapp as wa;

/// The fake server's long-lived Noise identity: its static key pair and the (zero-signed) certificate
/// chain naming it, which the client accepts when built with `danger-skip-cert-chain-verify`.
pub(crate) struct ServerIdentity {
    static_kp: KeyPair,
    static_pub: [u8; 32],
    cert_chain: Vec<u8>,
}

impl ServerIdentity {
    pub(crate) fn generate() -> Self {
        let static_kp = KeyPair::generate(&mut rand::rng());
        let static_pub: [u8; 32] = static_kp.public_key.public_key_bytes().try_into().expect("X25519 key is 32 bytes");
        let cert_chain = wacore_noise::test_util::build_cert_chain_bytes(&static_pub);
        Self { static_kp, static_pub, cert_chain }
    }
}

/// Which handshake pattern a connection completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pattern {
    Xx,
    Ik,
    XxFallback,
}

type WsStream = WebSocketStream<TcpStream>;

/// Reads Noise frames (3-byte length prefixed) out of WebSocket binary messages.
pub(crate) struct FrameReader {
    stream: SplitStream<WsStream>,
    decoder: FrameDecoder,
    first: bool,
}

/// Writes Noise frames as WebSocket binary messages.
pub(crate) struct FrameWriter {
    sink: SplitSink<WsStream, Message>,
}

pub(crate) fn split(ws: WsStream) -> (FrameReader, FrameWriter) {
    let (sink, stream) = ws.split();
    (FrameReader { stream, decoder: FrameDecoder::new(), first: true }, FrameWriter { sink })
}

impl FrameReader {
    /// The next complete frame, or `None` when the socket closed. Cancel-safe: a frame is only taken out of
    /// the decoder once complete, and the underlying stream poll is cancel-safe.
    pub(crate) async fn next_frame(&mut self) -> anyhow::Result<Option<Vec<u8>>> {
        loop {
            if let Some(frame) = self.decoder.decode_frame() {
                return Ok(Some(frame.to_vec()));
            }
            let Some(msg) = self.stream.next().await else { return Ok(None) };
            match msg.context("websocket read")? {
                Message::Binary(data) => {
                    let mut data: &[u8] = &data;
                    if self.first {
                        self.first = false;
                        data = strip_intro(data)?;
                    }
                    self.decoder.feed(data);
                }
                Message::Close(_) => return Ok(None),
                _ => {}
            }
        }
    }
}

/// Strips the optional edge-routing pre-intro (`ED\0\1` + 3-byte length + data) and the `WA` connection
/// header that precede the first frame of a connection.
fn strip_intro(mut data: &[u8]) -> anyhow::Result<&[u8]> {
    if data.starts_with(b"ED\x00\x01") {
        if data.len() < 7 {
            bail!("truncated edge routing pre-intro");
        }
        let len = ((data[4] as usize) << 16) | ((data[5] as usize) << 8) | data[6] as usize;
        data = data.get(7 + len..).ok_or_else(|| anyhow!("truncated edge routing pre-intro"))?;
    }
    if !data.starts_with(&WA_CONN_HEADER[..2]) || data.len() < WA_CONN_HEADER.len() {
        bail!("missing WA connection header");
    }
    Ok(&data[WA_CONN_HEADER.len()..])
}

impl FrameWriter {
    pub(crate) async fn send_frame(&mut self, payload: &[u8]) -> anyhow::Result<()> {
        let framed = encode_frame(payload, None)?;
        self.sink.send(Message::Binary(framed.into())).await.context("websocket write")
    }

    /// Closes the WebSocket politely (close frame), ignoring errors.
    pub(crate) async fn close(&mut self) {
        let _ = self.sink.close().await;
    }
}

/// What a finished handshake yields: the transport ciphers, the client's static Noise key and its
/// ClientPayload (login or registration data).
pub(crate) struct Established {
    pub(crate) transport: Transport,
    pub(crate) client_static: [u8; 32],
    pub(crate) payload: wa::ClientPayload,
    pub(crate) pattern: Pattern,
}

/// Post-handshake transport state: one cipher and one counter per direction, both counters starting at 0.
pub(crate) struct Transport {
    write: NoiseCipher,
    read: NoiseCipher,
    write_counter: u32,
    read_counter: u32,
}

impl Transport {
    pub(crate) fn encrypt(&mut self, plaintext: &[u8]) -> anyhow::Result<Vec<u8>> {
        let out = self.write.encrypt_with_counter(self.write_counter, plaintext)?;
        self.write_counter = self.write_counter.checked_add(1).ok_or_else(|| anyhow!("write counter exhausted"))?;
        Ok(out)
    }

    pub(crate) fn decrypt(&mut self, mut frame: Vec<u8>) -> anyhow::Result<Vec<u8>> {
        self.read.decrypt_in_place_with_counter(self.read_counter, &mut frame)?;
        self.read_counter = self.read_counter.checked_add(1).ok_or_else(|| anyhow!("read counter exhausted"))?;
        Ok(frame)
    }
}

fn key32(bytes: Vec<u8>, what: &str) -> anyhow::Result<[u8; 32]> {
    bytes.try_into().map_err(|_| anyhow!("{what} is not 32 bytes"))
}

fn server_hello(ephemeral: &[u8], r#static: Option<Vec<u8>>, payload: Vec<u8>) -> Vec<u8> {
    wa::HandshakeMessage {
        server_hello: buffa::MessageField::some(wa::handshake_message::ServerHello {
            ephemeral: Some(ephemeral.to_vec()),
            r#static,
            payload: Some(payload),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

fn decode_payload(bytes: &[u8]) -> anyhow::Result<wa::ClientPayload> {
    wa::ClientPayload::decode_from_slice(bytes).map_err(|e| anyhow!("bad ClientPayload: {e}"))
}

/// Runs the responder side of the handshake: XX for a first connect, IK when the client cached our static
/// key, and XXfallback when it cached someone else's (e.g. a previous fake server's).
pub(crate) async fn accept(
    id: &ServerIdentity,
    reader: &mut FrameReader,
    writer: &mut FrameWriter,
) -> anyhow::Result<Established> {
    let hello = reader.next_frame().await?.ok_or_else(|| anyhow!("closed before ClientHello"))?;
    let msg = wa::HandshakeMessage::decode_from_slice(&hello).map_err(|e| anyhow!("bad ClientHello: {e}"))?;
    let ch = msg.client_hello.into_option().ok_or_else(|| anyhow!("first message is not a ClientHello"))?;
    let client_eph = key32(ch.ephemeral.ok_or_else(|| anyhow!("ClientHello without ephemeral"))?, "ephemeral")?;

    if let (Some(enc_static), Some(enc_payload)) = (ch.r#static, ch.payload) {
        if let Some(done) = try_ik(id, writer, client_eph, &enc_static, &enc_payload).await? {
            return Ok(done);
        }
        return xx(id, reader, writer, client_eph, Pattern::XxFallback).await;
    }
    xx(id, reader, writer, client_eph, Pattern::Xx).await
}

async fn try_ik(
    id: &ServerIdentity,
    writer: &mut FrameWriter,
    client_eph: [u8; 32],
    enc_static: &[u8],
    enc_payload: &[u8],
) -> anyhow::Result<Option<Established>> {
    let server_priv = id.static_kp.private_key.serialize();
    let mut noise = NoiseHandshake::new(NOISE_PATTERN_IK, &WA_CONN_HEADER)?;
    noise.authenticate(&id.static_pub);
    noise.authenticate(&client_eph);
    noise.mix_shared_secret(server_priv, &client_eph)?;
    // A client that cached another server's static key fails here: answer with XXfallback.
    let Ok(client_static) = noise.decrypt(enc_static) else { return Ok(None) };
    let client_static = key32(client_static, "client static")?;
    noise.mix_shared_secret(server_priv, &client_static)?;
    let Ok(payload) = noise.decrypt(enc_payload) else { return Ok(None) };

    let eph = KeyPair::generate(&mut rand::rng());
    let eph_pub = eph.public_key.public_key_bytes().to_vec();
    noise.authenticate(&eph_pub);
    noise.mix_shared_secret(eph.private_key.serialize(), &client_eph)?;
    noise.mix_shared_secret(eph.private_key.serialize(), &client_static)?;
    let enc_cert = noise.encrypt(&id.cert_chain)?;
    writer.send_frame(&server_hello(&eph_pub, None, enc_cert)).await?;

    let (client_write, client_read) = noise.finish()?;
    Ok(Some(Established {
        transport: Transport { write: client_read, read: client_write, write_counter: 0, read_counter: 0 },
        client_static,
        payload: decode_payload(&payload)?,
        pattern: Pattern::Ik,
    }))
}

async fn xx(
    id: &ServerIdentity,
    reader: &mut FrameReader,
    writer: &mut FrameWriter,
    client_eph: [u8; 32],
    pattern: Pattern,
) -> anyhow::Result<Established> {
    let name = if pattern == Pattern::XxFallback { NOISE_PATTERN_XXFALLBACK } else { NOISE_PATTERN_XX };
    let mut noise = NoiseHandshake::new(name, &WA_CONN_HEADER)?;
    noise.authenticate(&client_eph);
    let eph = KeyPair::generate(&mut rand::rng());
    let eph_pub = eph.public_key.public_key_bytes().to_vec();
    noise.authenticate(&eph_pub);
    noise.mix_shared_secret(eph.private_key.serialize(), &client_eph)?;
    let enc_static = noise.encrypt(&id.static_pub)?;
    noise.mix_shared_secret(id.static_kp.private_key.serialize(), &client_eph)?;
    let enc_cert = noise.encrypt(&id.cert_chain)?;
    writer.send_frame(&server_hello(&eph_pub, Some(enc_static), enc_cert)).await?;

    let finish = reader.next_frame().await?.ok_or_else(|| anyhow!("closed before ClientFinish"))?;
    let msg = wa::HandshakeMessage::decode_from_slice(&finish).map_err(|e| anyhow!("bad ClientFinish: {e}"))?;
    let cf = msg.client_finish.into_option().ok_or_else(|| anyhow!("second message is not a ClientFinish"))?;
    let client_static = noise.decrypt(&cf.r#static.ok_or_else(|| anyhow!("ClientFinish without static"))?)?;
    let client_static = key32(client_static, "client static")?;
    noise.mix_shared_secret(eph.private_key.serialize(), &client_static)?;
    let payload = noise.decrypt(&cf.payload.ok_or_else(|| anyhow!("ClientFinish without payload"))?)?;

    let (client_write, client_read) = noise.finish()?;
    Ok(Established {
        transport: Transport { write: client_read, read: client_write, write_counter: 0, read_counter: 0 },
        client_static,
        payload: decode_payload(&payload)?,
        pattern,
    })
}
