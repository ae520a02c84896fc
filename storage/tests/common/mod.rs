//! What the storage suites share: a fixed clock, and a workspace with a channel to work in.

// Each suite uses some of these.
#![allow(dead_code)]

use balas_domain::{
    ChannelId, ChannelName, Email, MessageText, PersonName, PhoneNumber, Provider, RatePerSecond, Role, SenderKind,
    Timestamp, WorkspaceId, WorkspaceName,
};
use balas_storage::{NewChannel, NewMember, NewOutbound, Store};

pub const T0: Timestamp = Timestamp(1_700_000_000_000);

pub fn phone(raw: &str) -> PhoneNumber {
    PhoneNumber::parse(raw).unwrap()
}

pub async fn workspace(store: &Store, name: &str, admin: &str) -> WorkspaceId {
    let (email, person) = (Email::parse(admin).unwrap(), PersonName::parse("Admin").unwrap());
    let member = NewMember {
        email: &email,
        name: &person,
        role: Role::Admin,
        password_hash: Some("hash"),
        must_change_password: false,
    };
    store.create_workspace(&WorkspaceName::parse(name).unwrap(), &member, T0).await.unwrap().0
}

pub async fn channel(store: &Store, workspace_id: WorkspaceId, number: &str) -> balas_domain::Channel {
    let name = ChannelName::parse("Sales").unwrap();
    let phone = phone(number);
    let channel = NewChannel {
        workspace_id,
        name: &name,
        provider: Provider::Sandbox,
        phone: &phone,
        rate: RatePerSecond::DEFAULT,
        link_method: balas_domain::LinkMethod::Qr,
    };
    store.create_channel(&channel, T0).await.unwrap()
}

/// An agent's text to `to` on a channel (no author: override `sender_user` where it matters).
pub fn reply<'a>(
    workspace_id: WorkspaceId,
    channel_id: ChannelId,
    to: &'a PhoneNumber,
    text: &'a MessageText,
    wa_id: &'a str,
) -> NewOutbound<'a> {
    NewOutbound {
        workspace_id,
        channel_id,
        to,
        text: text.as_str(),
        media: None,
        sender: SenderKind::Agent,
        sender_user: None,
        wa_id,
    }
}
