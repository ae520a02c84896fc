//! The phone's side of QR pairing: parsing the QR payload and building the ADV device identity that the
//! companion verifies in `<pair-success>`.

use anyhow::{anyhow, bail};
use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use buffa::Message as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use wacore_libsignal::protocol::KeyPair;
use waproto::whatsapp as wa;
use waproto::whatsapp::ADVEncryptionType;

/// `ADV_PREFIX_ACCOUNT_SIGNATURE` in WA Web / whatsmeow.
const ADV_PREFIX_ACCOUNT_SIGNATURE: &[u8] = &[6, 0];

/// The fields of a companion's pairing QR code: `ref,noise_pub,identity_pub,adv_secret[,client_type]`.
#[derive(Debug, Clone)]
pub(crate) struct QrPayload {
    pub(crate) pairing_ref: String,
    pub(crate) noise_pub: [u8; 32],
    pub(crate) identity_pub: [u8; 32],
    pub(crate) adv_secret: [u8; 32],
}

fn b64_key(field: &str, what: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = BASE64_STANDARD.decode(field).map_err(|e| anyhow!("QR {what} is not base64: {e}"))?;
    bytes.try_into().map_err(|_| anyhow!("QR {what} is not 32 bytes"))
}

pub(crate) fn parse_qr(code: &str) -> anyhow::Result<QrPayload> {
    let body = code.strip_prefix("https://wa.me/settings/linked_devices#").unwrap_or(code);
    let parts: Vec<&str> = body.split(',').collect();
    if parts.len() < 4 || parts.iter().any(|p| p.is_empty()) {
        bail!("QR code must have at least 4 non-empty comma-separated fields, got {code:?}");
    }
    Ok(QrPayload {
        pairing_ref: parts[0].to_owned(),
        noise_pub: b64_key(parts[1], "noise key")?,
        identity_pub: b64_key(parts[2], "identity key")?,
        adv_secret: b64_key(parts[3], "adv secret")?,
    })
}

/// Builds the `ADVSignedDeviceIdentityHMAC` bytes for `<pair-success><device-identity>`: the device
/// identity signed by the account key over the companion's identity key, HMAC'd with the QR's adv secret.
pub(crate) fn device_identity(qr: &QrPayload, account: &KeyPair, key_index: u32) -> anyhow::Result<Vec<u8>> {
    let mut rng = rand::rng();
    let details = wa::ADVDeviceIdentity {
        raw_id: Some(rand::random::<u32>()),
        timestamp: Some(now_secs()),
        key_index: Some(key_index),
        account_type: Some(ADVEncryptionType::E2EE),
        device_type: Some(ADVEncryptionType::E2EE),
    }
    .encode_to_vec();
    let mut to_sign = Vec::with_capacity(2 + details.len() + 32);
    to_sign.extend_from_slice(ADV_PREFIX_ACCOUNT_SIGNATURE);
    to_sign.extend_from_slice(&details);
    to_sign.extend_from_slice(&qr.identity_pub);
    let signature = account.private_key.calculate_signature(&to_sign, &mut rng).map_err(|e| anyhow!("{e}"))?;
    let signed = wa::ADVSignedDeviceIdentity {
        details: Some(details),
        account_signature_key: Some(account.public_key.public_key_bytes().to_vec()),
        account_signature: Some(signature.to_vec()),
        device_signature: None,
    }
    .encode_to_vec();
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&qr.adv_secret).map_err(|e| anyhow!("{e}"))?;
    mac.update(&signed);
    let hmac = mac.finalize().into_bytes().to_vec();
    Ok(wa::ADVSignedDeviceIdentityHMAC {
        details: Some(signed),
        hmac: Some(hmac),
        account_type: Some(ADVEncryptionType::E2EE),
    }
    .encode_to_vec())
}

pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
