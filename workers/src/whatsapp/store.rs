//! The client library's storage (`Backend`: Signal keys, app state, protocol caches, the device)
//! on Balas' own database, so a session lives in SQLite or PostgreSQL and any worker can resume
//! it. Every method maps onto the fenced key/value entries of [`Store`]: a worker that lost the
//! session gets its writes refused instead of corrupting what the new holder writes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use balas_domain::ChannelId;
use balas_storage::{SessionWrite, Store};
use whatsapp_rust::bytes::Bytes;
use whatsapp_rust::wacore::appstate::hash::HashState;
use whatsapp_rust::wacore::appstate::processor::AppStateMutationMAC;
use whatsapp_rust::wacore::store::Device;
use whatsapp_rust::wacore::store::error::{Result, StoreError};
use whatsapp_rust::wacore::store::traits::{
    AppStateSyncKey, AppSyncStore, DeviceListRecord, DeviceStore, LidPnMappingEntry, MsgSecretEntry, MsgSecretStore,
    ProtocolStore, SignalStore, TcTokenEntry, merge_msg_secret_expiry, merge_msg_secret_message_ts,
};

// The spaces of a session's entries.
const IDENTITY: &str = "identity";
const SESSION: &str = "session";
const PREKEY: &str = "prekey";
const SIGNED_PREKEY: &str = "signed_prekey";
const SENDER_KEY: &str = "sender_key";
const SYNC_KEY: &str = "sync_key";
const VERSION: &str = "app_state_version";
const MUTATION_MAC: &str = "mutation_mac";
const SENDER_KEY_DEVICE: &str = "sender_key_device";
const LID: &str = "lid";
const PN: &str = "pn";
const BASE_KEY: &str = "base_key";
const DEVICES: &str = "devices";
const GROUP: &str = "group";
const TC_TOKEN: &str = "tc_token";
const SENT: &str = "sent_message";
const PENDING: &str = "pending_inbound";
const MSG_SECRET: &str = "msg_secret";
const META: &str = "meta";
const DEVICE: &str = "device";

/// The key of the newest app-state sync key id, in [`META`].
const LATEST_SYNC_KEY: &str = "latest_sync_key";
/// Joins the parts of a compound key (never part of a JID or id).
const SEP: char = '\u{1f}';

fn join(parts: &[&str]) -> String {
    parts.join(&SEP.to_string())
}

fn prefix(part: &str) -> String {
    format!("{part}{SEP}")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Prekey ids padded so that keys sort by number.
fn id_key(id: u32) -> String {
    format!("{id:010}")
}

fn json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| StoreError::Serialization(Box::new(e)))
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Serialization(Box::new(e)))
}

/// A blob with a time in front (for entries that expire by age).
fn stamped(at: i64, bytes: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(8 + bytes.len());
    value.extend_from_slice(&at.to_be_bytes());
    value.extend_from_slice(bytes);
    value
}

fn unstamp(value: &[u8]) -> Result<(i64, &[u8])> {
    let (at, rest) = value.split_first_chunk::<8>().ok_or_else(|| StoreError::Validation("short entry".into()))?;
    Ok((i64::from_be_bytes(*at), rest))
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn db(error: balas_storage::StoreError) -> StoreError {
    match error {
        balas_storage::StoreError::Conflict(balas_storage::Conflict::SessionTaken) => {
            StoreError::Validation("another worker took this WhatsApp session; this one must stop".into())
        }
        other => StoreError::Database(Box::new(other)),
    }
}

fn put(space: &'static str, key: impl Into<String>, value: impl Into<Vec<u8>>) -> SessionWrite {
    SessionWrite::Put { space, key: key.into(), value: value.into() }
}

fn delete(space: &'static str, key: impl Into<String>) -> SessionWrite {
    SessionWrite::Delete { space, key: key.into() }
}

/// One channel's session state, written under the fencing token of the claim that made it.
#[derive(Clone)]
pub struct DbBackend {
    store: Store,
    channel: ChannelId,
    fence: i64,
    /// Set once the session was forgotten: the client's last flushes must not bring it back.
    forgotten: Arc<AtomicBool>,
}

impl DbBackend {
    /// Claims the channel's session: from now on, writes under any earlier claim are refused.
    pub async fn claim(store: Store, channel: ChannelId) -> balas_storage::StoreResult<Self> {
        let fence = store.claim_wa_session(channel).await?;
        Ok(Self { store, channel, fence, forgotten: Arc::new(AtomicBool::new(false)) })
    }

    /// Forgets the whole session (after a logout: the number must be linked again).
    /// Every later write of this claim is dropped, so the client's own saves while it closes (its
    /// device, its keys) cannot bring the session back.
    pub async fn forget(&self) -> balas_storage::StoreResult<()> {
        self.forgotten.store(true, Ordering::SeqCst);
        self.store.forget_wa_session(self.channel, self.fence).await
    }

    async fn get(&self, space: &str, key: &str) -> Result<Option<Vec<u8>>> {
        self.store.wa_session_entry(self.channel, space, key).await.map_err(db)
    }

    async fn list(&self, space: &str, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        self.store.wa_session_entries(self.channel, space, prefix).await.map_err(db)
    }

    async fn write(&self, writes: &[SessionWrite]) -> Result<()> {
        if writes.is_empty() || self.forgotten.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.store.write_wa_session(self.channel, self.fence, writes).await.map_err(db)
    }

    /// Deletes the entries of `space` that `keep` rejects; returns how many went.
    async fn delete_where(&self, space: &'static str, keep: impl Fn(&[u8]) -> Result<bool>) -> Result<u32> {
        let mut writes = Vec::new();
        for (key, value) in self.list(space, "").await? {
            if !keep(&value)? {
                writes.push(delete(space, key));
            }
        }
        self.write(&writes).await?;
        Ok(writes.len() as u32)
    }
}

#[async_trait]
impl SignalStore for DbBackend {
    async fn put_identity(&self, address: &str, key: [u8; 32]) -> Result<()> {
        self.write(&[put(IDENTITY, address, key)]).await
    }

    async fn put_identities_batch(&self, identities: &[(Arc<str>, [u8; 32])]) -> Result<()> {
        let writes: Vec<_> = identities.iter().map(|(address, key)| put(IDENTITY, address.as_ref(), *key)).collect();
        self.write(&writes).await
    }

    async fn load_identity(&self, address: &str) -> Result<Option<[u8; 32]>> {
        Ok(self.get(IDENTITY, address).await?.and_then(|key| key.try_into().ok()))
    }

    async fn delete_identity(&self, address: &str) -> Result<()> {
        self.write(&[delete(IDENTITY, address)]).await
    }

    async fn get_session(&self, address: &str) -> Result<Option<Bytes>> {
        Ok(self.get(SESSION, address).await?.map(Bytes::from))
    }

    async fn put_session(&self, address: &str, session: &[u8]) -> Result<()> {
        self.write(&[put(SESSION, address, session)]).await
    }

    async fn put_sessions_batch(&self, sessions: &[(Arc<str>, Bytes)]) -> Result<()> {
        let writes: Vec<_> = sessions.iter().map(|(address, s)| put(SESSION, address.as_ref(), s.to_vec())).collect();
        self.write(&writes).await
    }

    async fn delete_session(&self, address: &str) -> Result<()> {
        self.write(&[delete(SESSION, address)]).await
    }

    async fn has_signal_state_for_user(&self, user: &str) -> Result<bool> {
        // `user@server` for device 0, `user:device@server` for the others.
        let of_user = |key: &str| key.strip_prefix(user).is_some_and(|rest| rest.starts_with(['@', ':']));
        for space in [SESSION, IDENTITY] {
            if self.list(space, user).await?.iter().any(|(key, _)| of_user(key)) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn store_prekey(&self, id: u32, record: &[u8], uploaded: bool) -> Result<()> {
        self.write(&[put(PREKEY, id_key(id), stamped(i64::from(uploaded), record))]).await
    }

    async fn store_prekeys_batch(&self, keys: &[(u32, Bytes)], uploaded: bool) -> Result<()> {
        let writes: Vec<_> =
            keys.iter().map(|(id, record)| put(PREKEY, id_key(*id), stamped(i64::from(uploaded), record))).collect();
        self.write(&writes).await
    }

    async fn load_prekey(&self, id: u32) -> Result<Option<Bytes>> {
        match self.get(PREKEY, &id_key(id)).await? {
            Some(value) => Ok(Some(Bytes::copy_from_slice(unstamp(&value)?.1))),
            None => Ok(None),
        }
    }

    async fn mark_prekeys_uploaded(&self, ids: &[u32]) -> Result<()> {
        let mut writes = Vec::new();
        for id in ids {
            // Never bring back a prekey that was used and removed meanwhile.
            if let Some(value) = self.get(PREKEY, &id_key(*id)).await? {
                writes.push(put(PREKEY, id_key(*id), stamped(1, unstamp(&value)?.1)));
            }
        }
        self.write(&writes).await
    }

    async fn remove_prekey(&self, id: u32) -> Result<()> {
        self.write(&[delete(PREKEY, id_key(id))]).await
    }

    async fn get_max_prekey_id(&self) -> Result<u32> {
        // Keys are zero-padded, so the last one is the largest.
        Ok(self.list(PREKEY, "").await?.last().and_then(|(key, _)| key.parse().ok()).unwrap_or(0))
    }

    async fn store_signed_prekey(&self, id: u32, record: &[u8]) -> Result<()> {
        self.write(&[put(SIGNED_PREKEY, id_key(id), record)]).await
    }

    async fn load_signed_prekey(&self, id: u32) -> Result<Option<Vec<u8>>> {
        self.get(SIGNED_PREKEY, &id_key(id)).await
    }

    async fn load_all_signed_prekeys(&self) -> Result<Vec<(u32, Vec<u8>)>> {
        Ok(self.list(SIGNED_PREKEY, "").await?.into_iter().filter_map(|(k, v)| Some((k.parse().ok()?, v))).collect())
    }

    async fn remove_signed_prekey(&self, id: u32) -> Result<()> {
        self.write(&[delete(SIGNED_PREKEY, id_key(id))]).await
    }

    async fn put_sender_key(&self, address: &str, record: &[u8]) -> Result<()> {
        self.write(&[put(SENDER_KEY, address, record)]).await
    }

    async fn put_sender_keys_batch(&self, sender_keys: &[(Arc<str>, Bytes)]) -> Result<()> {
        let writes: Vec<_> = sender_keys.iter().map(|(a, r)| put(SENDER_KEY, a.as_ref(), r.to_vec())).collect();
        self.write(&writes).await
    }

    async fn get_sender_key(&self, address: &str) -> Result<Option<Vec<u8>>> {
        self.get(SENDER_KEY, address).await
    }

    async fn delete_sender_key(&self, address: &str) -> Result<()> {
        self.write(&[delete(SENDER_KEY, address)]).await
    }
}

#[async_trait]
impl AppSyncStore for DbBackend {
    async fn get_sync_key(&self, key_id: &[u8]) -> Result<Option<AppStateSyncKey>> {
        self.get(SYNC_KEY, &hex(key_id)).await?.map(|v| parse(&v)).transpose()
    }

    async fn set_sync_key(&self, key_id: &[u8], key: AppStateSyncKey) -> Result<()> {
        self.write(&[put(SYNC_KEY, hex(key_id), json(&key)?), put(META, LATEST_SYNC_KEY, key_id)]).await
    }

    async fn get_version(&self, name: &str) -> Result<HashState> {
        Ok(self.get(VERSION, name).await?.map(|v| parse(&v)).transpose()?.unwrap_or_default())
    }

    async fn set_version(&self, name: &str, state: HashState) -> Result<()> {
        self.write(&[put(VERSION, name, json(&state)?)]).await
    }

    async fn put_mutation_macs(&self, name: &str, _version: u64, mutations: &[AppStateMutationMAC]) -> Result<()> {
        let writes: Vec<_> = mutations
            .iter()
            .map(|m| put(MUTATION_MAC, join(&[name, &hex(&m.index_mac)]), m.value_mac.clone()))
            .collect();
        self.write(&writes).await
    }

    async fn get_mutation_mac(&self, name: &str, index_mac: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get(MUTATION_MAC, &join(&[name, &hex(index_mac)])).await
    }

    async fn delete_mutation_macs(&self, name: &str, index_macs: &[Vec<u8>]) -> Result<()> {
        let writes: Vec<_> = index_macs.iter().map(|mac| delete(MUTATION_MAC, join(&[name, &hex(mac)]))).collect();
        self.write(&writes).await
    }

    async fn clear_mutation_macs(&self, name: &str) -> Result<()> {
        let writes: Vec<_> = self
            .list(MUTATION_MAC, &prefix(name))
            .await?
            .into_iter()
            .map(|(key, _)| delete(MUTATION_MAC, key))
            .collect();
        self.write(&writes).await
    }

    async fn get_latest_sync_key_id(&self) -> Result<Option<Vec<u8>>> {
        self.get(META, LATEST_SYNC_KEY).await
    }
}

#[async_trait]
impl ProtocolStore for DbBackend {
    async fn get_sender_key_devices(&self, group_jid: &str) -> Result<Vec<(String, bool)>> {
        let group = prefix(group_jid);
        Ok(self
            .list(SENDER_KEY_DEVICE, &group)
            .await?
            .into_iter()
            .map(|(key, value)| (key[group.len()..].to_owned(), value.first() == Some(&1)))
            .collect())
    }

    async fn set_sender_key_status(&self, group_jid: &str, entries: &[(&str, bool)]) -> Result<()> {
        let writes: Vec<_> = entries
            .iter()
            .map(|(device, has)| put(SENDER_KEY_DEVICE, join(&[group_jid, device]), vec![u8::from(*has)]))
            .collect();
        self.write(&writes).await
    }

    async fn clear_sender_key_devices(&self, group_jid: &str) -> Result<()> {
        let rows = self.list(SENDER_KEY_DEVICE, &prefix(group_jid)).await?;
        self.write(&rows.into_iter().map(|(key, _)| delete(SENDER_KEY_DEVICE, key)).collect::<Vec<_>>()).await
    }

    async fn delete_sender_key_device_rows(&self, device_jids: &[&str]) -> Result<()> {
        let rows = self.list(SENDER_KEY_DEVICE, "").await?;
        let writes: Vec<_> = rows
            .into_iter()
            .filter(|(key, _)| key.split_once(SEP).is_some_and(|(_, device)| device_jids.contains(&device)))
            .map(|(key, _)| delete(SENDER_KEY_DEVICE, key))
            .collect();
        self.write(&writes).await
    }

    async fn clear_all_sender_key_devices(&self) -> Result<()> {
        self.write(&[SessionWrite::Clear { space: SENDER_KEY_DEVICE }]).await
    }

    async fn get_lid_mapping(&self, lid: &str) -> Result<Option<LidPnMappingEntry>> {
        self.get(LID, lid).await?.map(|v| parse(&v)).transpose()
    }

    async fn get_pn_mapping(&self, phone: &str) -> Result<Option<LidPnMappingEntry>> {
        match self.get(PN, phone).await? {
            Some(lid) => self.get_lid_mapping(&String::from_utf8_lossy(&lid)).await,
            None => Ok(None),
        }
    }

    async fn put_lid_mapping(&self, entry: &LidPnMappingEntry) -> Result<()> {
        self.put_lid_mappings(std::slice::from_ref(entry)).await
    }

    async fn put_lid_mappings(&self, entries: &[LidPnMappingEntry]) -> Result<()> {
        let mut writes = Vec::with_capacity(entries.len() * 3);
        for entry in entries {
            // A LID that moved to another number no longer answers for the old one.
            if let Some(old) = self.get_lid_mapping(&entry.lid).await?
                && old.phone_number != entry.phone_number
            {
                writes.push(delete(PN, old.phone_number));
            }
            writes.push(put(PN, entry.phone_number.as_str(), entry.lid.as_bytes()));
            writes.push(put(LID, entry.lid.as_str(), json(entry)?));
        }
        self.write(&writes).await
    }

    async fn get_all_lid_mappings(&self) -> Result<Vec<LidPnMappingEntry>> {
        self.list(LID, "").await?.iter().map(|(_, v)| parse(v)).collect()
    }

    async fn save_base_key(&self, address: &str, message_id: &str, base_key: &[u8]) -> Result<()> {
        self.write(&[put(BASE_KEY, join(&[address, message_id]), base_key)]).await
    }

    async fn has_same_base_key(&self, address: &str, message_id: &str, current_base_key: &[u8]) -> Result<bool> {
        Ok(self.get(BASE_KEY, &join(&[address, message_id])).await?.is_some_and(|key| key == current_base_key))
    }

    async fn delete_base_key(&self, address: &str, message_id: &str) -> Result<()> {
        self.write(&[delete(BASE_KEY, join(&[address, message_id]))]).await
    }

    async fn update_device_list(&self, record: DeviceListRecord) -> Result<()> {
        self.update_device_lists(vec![record]).await
    }

    async fn update_device_lists(&self, records: Vec<DeviceListRecord>) -> Result<()> {
        let writes = records.iter().map(|r| Ok(put(DEVICES, r.user.as_str(), json(r)?))).collect::<Result<Vec<_>>>()?;
        self.write(&writes).await
    }

    async fn get_devices(&self, user: &str) -> Result<Option<DeviceListRecord>> {
        self.get(DEVICES, user).await?.map(|v| parse(&v)).transpose()
    }

    async fn delete_devices(&self, user: &str) -> Result<()> {
        self.write(&[delete(DEVICES, user)]).await
    }

    async fn get_group_metadata(&self, group_jid: &str) -> Result<Option<Vec<u8>>> {
        self.get(GROUP, group_jid).await
    }

    async fn put_group_metadata(&self, group_jid: &str, blob: &[u8]) -> Result<()> {
        self.write(&[put(GROUP, group_jid, blob)]).await
    }

    async fn delete_group_metadata(&self, group_jid: &str) -> Result<()> {
        self.write(&[delete(GROUP, group_jid)]).await
    }

    async fn get_tc_token(&self, jid: &str) -> Result<Option<TcTokenEntry>> {
        self.get(TC_TOKEN, jid).await?.map(|v| parse(&v)).transpose()
    }

    async fn put_tc_token(&self, jid: &str, entry: &TcTokenEntry) -> Result<()> {
        self.write(&[put(TC_TOKEN, jid, json(entry)?)]).await
    }

    async fn delete_tc_token(&self, jid: &str) -> Result<()> {
        self.write(&[delete(TC_TOKEN, jid)]).await
    }

    async fn get_all_tc_token_jids(&self) -> Result<Vec<String>> {
        Ok(self.list(TC_TOKEN, "").await?.into_iter().map(|(jid, _)| jid).collect())
    }

    async fn delete_expired_tc_tokens(&self, token_cutoff: i64, sender_cutoff: i64) -> Result<u32> {
        // Kept while either the received token or the sender's window is live.
        self.delete_where(TC_TOKEN, |value| {
            let entry: TcTokenEntry = parse(value)?;
            let token_live = !entry.token.is_empty() && entry.token_timestamp >= token_cutoff;
            Ok(token_live || entry.sender_timestamp.is_some_and(|at| at >= sender_cutoff))
        })
        .await
    }

    async fn store_sent_message(&self, chat_jid: &str, message_id: &str, payload: &[u8]) -> Result<()> {
        self.write(&[put(SENT, join(&[chat_jid, message_id]), stamped(now_secs(), payload))]).await
    }

    async fn take_sent_message(&self, chat_jid: &str, message_id: &str) -> Result<Option<Vec<u8>>> {
        let key = join(&[chat_jid, message_id]);
        let Some(value) = self.get(SENT, &key).await? else { return Ok(None) };
        self.write(&[delete(SENT, key)]).await?;
        Ok(Some(unstamp(&value)?.1.to_vec()))
    }

    async fn delete_expired_sent_messages(&self, cutoff_timestamp: i64) -> Result<u32> {
        self.delete_where(SENT, |value| Ok(unstamp(value)?.0 >= cutoff_timestamp)).await
    }

    async fn store_pending_inbound(&self, chat: &str, sender: &str, id: &str, message: &[u8]) -> Result<()> {
        self.write(&[put(PENDING, join(&[chat, sender, id]), stamped(now_secs(), message))]).await
    }

    async fn get_pending_inbound(&self, chat: &str, sender: &str, id: &str) -> Result<Option<Vec<u8>>> {
        match self.get(PENDING, &join(&[chat, sender, id])).await? {
            Some(value) => Ok(Some(unstamp(&value)?.1.to_vec())),
            None => Ok(None),
        }
    }

    async fn delete_pending_inbound(&self, chat: &str, sender: &str, id: &str) -> Result<()> {
        self.write(&[delete(PENDING, join(&[chat, sender, id]))]).await
    }

    async fn delete_expired_pending_inbound(&self, cutoff_timestamp: i64) -> Result<u32> {
        self.delete_where(PENDING, |value| Ok(unstamp(value)?.0 >= cutoff_timestamp)).await
    }
}

/// A message secret as stored: the secret after its expiry and message time.
fn secret_value(secret: &[u8], expires_at: i64, message_ts: i64) -> Vec<u8> {
    let mut value = stamped(expires_at, &message_ts.to_be_bytes());
    value.extend_from_slice(secret);
    value
}

/// (secret, expires at, message time)
fn parse_secret(value: &[u8]) -> Result<(&[u8], i64, i64)> {
    let (expires_at, rest) = unstamp(value)?;
    let (message_ts, secret) = unstamp(rest)?;
    Ok((secret, expires_at, message_ts))
}

#[async_trait]
impl MsgSecretStore for DbBackend {
    async fn put_msg_secrets(&self, entries: Vec<MsgSecretEntry>) -> Result<usize> {
        let mut writes = Vec::with_capacity(entries.len());
        for entry in &entries {
            let key = join(&[&entry.chat, &entry.sender, &entry.msg_id]);
            let (expires_at, message_ts) = match self.get(MSG_SECRET, &key).await? {
                Some(old) => {
                    let (_, old_expiry, old_ts) = parse_secret(&old)?;
                    (
                        merge_msg_secret_expiry(old_expiry, entry.expires_at),
                        merge_msg_secret_message_ts(old_ts, entry.message_ts),
                    )
                }
                None => (entry.expires_at, entry.message_ts),
            };
            writes.push(put(MSG_SECRET, key, secret_value(&entry.secret, expires_at, message_ts)));
        }
        self.write(&writes).await?;
        Ok(entries.len())
    }

    async fn get_msg_secret(&self, chat: &str, sender: &str, msg_id: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.get_msg_secret_with_ts(chat, sender, msg_id).await?.map(|(secret, _)| secret))
    }

    async fn get_msg_secret_with_ts(&self, chat: &str, sender: &str, msg_id: &str) -> Result<Option<(Vec<u8>, i64)>> {
        match self.get(MSG_SECRET, &join(&[chat, sender, msg_id])).await? {
            Some(value) => {
                let (secret, _, message_ts) = parse_secret(&value)?;
                Ok(Some((secret.to_vec(), message_ts)))
            }
            None => Ok(None),
        }
    }

    async fn delete_expired_msg_secrets(&self, cutoff_timestamp: i64) -> Result<u32> {
        // 0 means it never expires.
        self.delete_where(MSG_SECRET, |value| {
            let (_, expires_at, _) = parse_secret(value)?;
            Ok(expires_at == 0 || expires_at > cutoff_timestamp)
        })
        .await
    }
}

#[async_trait]
impl DeviceStore for DbBackend {
    async fn save(&self, device: &Device) -> Result<()> {
        self.write(&[put(DEVICE, "", json(device)?)]).await
    }

    async fn load(&self) -> Result<Option<Device>> {
        self.get(DEVICE, "").await?.map(|v| parse(&v)).transpose()
    }

    async fn exists(&self) -> Result<bool> {
        Ok(self.get(DEVICE, "").await?.is_some())
    }

    async fn create(&self) -> Result<i32> {
        // One device per channel: make it on first use.
        if !self.exists().await? {
            self.save(&Device::new()).await?;
        }
        Ok(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_two_lowercase_digits_per_byte() {
        assert_eq!(hex(&[0u8, 1, 0xab, 0xff]), "0001abff");
    }

    #[test]
    fn stamped_values_keep_their_time_and_bytes() {
        let value = stamped(-5, b"abc");
        assert_eq!(unstamp(&value).unwrap(), (-5, &b"abc"[..]));
        assert!(unstamp(b"short").is_err());
        let secret = secret_value(&[7; 32], 10, 20);
        assert_eq!(parse_secret(&secret).unwrap(), (&[7u8; 32][..], 10, 20));
    }

    #[test]
    fn prekey_keys_sort_by_number() {
        let mut keys = vec![id_key(10), id_key(9), id_key(100)];
        keys.sort();
        assert_eq!(keys, [id_key(9), id_key(10), id_key(100)]);
    }
}
