//! The phone's side of pairing: parsing the QR payload, the pairing-code key exchange, and building the
//! ADV device identity that the companion verifies in `<pair-success>`.

use anyhow::{anyhow, bail};
use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use buffa::Message as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use wacore::crypto::hkdf_sha256_into;
use wacore::pair_code::PairCodeUtils;
use wacore_libsignal::crypto::aes_256_gcm_decrypt;
use wacore_libsignal::protocol::{KeyPair, PublicKey};
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
/// identity signed by the account key over the companion's identity key, HMAC'd with the adv secret (the
/// QR's, or the one both sides derive in pairing-code linking).
pub(crate) fn device_identity(
    identity_pub: &[u8; 32],
    adv_secret: &[u8; 32],
    account: &KeyPair,
    key_index: u32,
) -> anyhow::Result<Vec<u8>> {
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
    to_sign.extend_from_slice(identity_pub);
    let signature = account.private_key.calculate_signature(&to_sign, &mut rng).map_err(|e| anyhow!("{e}"))?;
    let signed = wa::ADVSignedDeviceIdentity {
        details: Some(details),
        account_signature_key: Some(account.public_key.public_key_bytes().to_vec()),
        account_signature: Some(signature.to_vec()),
        device_signature: None,
    }
    .encode_to_vec();
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(adv_secret).map_err(|e| anyhow!("{e}"))?;
    mac.update(&signed);
    let hmac = mac.finalize().into_bytes().to_vec();
    Ok(wa::ADVSignedDeviceIdentityHMAC {
        details: Some(signed),
        hmac: Some(hmac),
        account_type: Some(ADVEncryptionType::E2EE),
    }
    .encode_to_vec())
}

/// The phone's half of pairing-code linking, once the user typed `code`: the primary's ephemeral key pair,
/// the companion's ephemeral public key (unwrapped with the code; garbage when the code is wrong) and the
/// primary's own ephemeral public key wrapped with the code for `primary_hello`.
pub(crate) struct CodeExchange {
    pub(crate) primary_ephemeral: KeyPair,
    pub(crate) companion_ephemeral_pub: [u8; 32],
    pub(crate) wrapped_primary_ephemeral_pub: [u8; 80],
}

/// Runs the two PBKDF2 derivations (2^17 rounds each, so call it off the async runtime).
pub(crate) fn code_exchange(wrapped_companion_ephemeral_pub: &[u8; 80], code: &str) -> anyhow::Result<CodeExchange> {
    let primary_ephemeral = KeyPair::generate(&mut rand::rng());
    let companion_ephemeral_pub = PairCodeUtils::decrypt_primary_ephemeral_pub(wrapped_companion_ephemeral_pub, code)
        .map_err(|e| anyhow!("unwrapping the companion's ephemeral key: {e}"))?;
    let primary_pub: [u8; 32] = primary_ephemeral
        .public_key
        .public_key_bytes()
        .try_into()
        .map_err(|_| anyhow!("an ephemeral public key is not 32 bytes"))?;
    let wrapped_primary_ephemeral_pub = PairCodeUtils::encrypt_ephemeral_pub(&primary_pub, code);
    Ok(CodeExchange { primary_ephemeral, companion_ephemeral_pub, wrapped_primary_ephemeral_pub })
}

/// Opens the companion's `companion_finish` key bundle (`salt 32 || iv 12 || AES-GCM(companion identity 32 ||
/// primary identity 32 || random 32)`) and derives the adv secret the companion stored: HKDF over the
/// ephemeral agreement, the identity agreement and the bundle's random bytes. Fails when the bundle does not
/// open, which is what a wrong code leads to.
pub(crate) fn open_key_bundle(
    exchange: &CodeExchange,
    wrapped_bundle: &[u8],
    account: &KeyPair,
    companion_identity_pub: &[u8; 32],
) -> anyhow::Result<[u8; 32]> {
    if wrapped_bundle.len() != 32 + 12 + 96 + 16 {
        bail!("the key bundle is {} bytes, expected 156", wrapped_bundle.len());
    }
    let (salt, rest) = wrapped_bundle.split_at(32);
    let (iv, sealed) = rest.split_at(12);
    let companion_ephemeral = PublicKey::from_djb_public_key_bytes(&exchange.companion_ephemeral_pub)
        .map_err(|e| anyhow!("companion ephemeral key: {e}"))?;
    let companion_identity =
        PublicKey::from_djb_public_key_bytes(companion_identity_pub).map_err(|e| anyhow!("companion identity: {e}"))?;
    let ephemeral_shared = exchange
        .primary_ephemeral
        .private_key
        .calculate_agreement(&companion_ephemeral)
        .map_err(|e| anyhow!("ephemeral agreement: {e}"))?;
    let mut key = [0u8; 32];
    hkdf_sha256_into(&ephemeral_shared, Some(salt), b"link_code_pairing_key_bundle_encryption_key", &mut key)
        .map_err(|e| anyhow!("bundle key derivation: {e}"))?;
    let iv: &[u8; 12] = iv.try_into().map_err(|_| anyhow!("bundle iv"))?;
    let mut bundle = Vec::with_capacity(96);
    aes_256_gcm_decrypt(&key, iv, b"", sealed, &mut bundle)
        .map_err(|_| anyhow!("the key bundle does not open: the code does not match the one the client shows"))?;
    if bundle.len() != 96 {
        bail!("the key bundle holds {} bytes, expected 96", bundle.len());
    }
    if bundle[..32] != companion_identity_pub[..] {
        bail!("the key bundle names another companion identity key");
    }
    if bundle[32..64] != *account.public_key.public_key_bytes() {
        bail!("the key bundle names another primary identity key");
    }
    let identity_shared =
        account.private_key.calculate_agreement(&companion_identity).map_err(|e| anyhow!("identity agreement: {e}"))?;
    let mut secret = Vec::with_capacity(96);
    secret.extend_from_slice(&ephemeral_shared);
    secret.extend_from_slice(&identity_shared);
    secret.extend_from_slice(&bundle[64..]);
    let mut adv_secret = [0u8; 32];
    hkdf_sha256_into(&secret, None, b"adv_secret", &mut adv_secret).map_err(|e| anyhow!("adv secret: {e}"))?;
    Ok(adv_secret)
}

pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
