use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A workspace: one business, its team and its data.
    WorkspaceId
);
id_type!(
    /// A person who logs in (admin or agent).
    UserId
);
id_type!(
    /// A WhatsApp number connected to a workspace.
    ChannelId
);
id_type!(
    /// A customer, known by phone number within a workspace.
    ContactId
);
id_type!(
    /// The thread between one contact and one channel.
    ConversationId
);
id_type!(
    /// One message, inbound or outbound.
    MessageId
);

/// A point in time, as milliseconds since the Unix epoch (UTC). Stored as a 64-bit integer in both
/// databases, so that the two behave the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn as_millis(self) -> i64 {
        self.0
    }

    pub fn plus_millis(self, ms: i64) -> Self {
        Self(self.0.saturating_add(ms))
    }
}
