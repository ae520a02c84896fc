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
id_type!(
    /// A broadcast (a campaign to many contacts).
    BroadcastId
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

    /// The time in words, in UTC to the minute: `2026-11-27 10:05 UTC` (the same text on the server
    /// and in the browser, so hydration finds what it expects).
    pub fn utc_minute(self) -> String {
        let (days, ms) = (self.0.div_euclid(86_400_000), self.0.rem_euclid(86_400_000));
        // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        let (hour, minute) = (ms / 3_600_000, ms / 60_000 % 60);
        format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC")
    }
}

#[cfg(test)]
mod time_tests {
    use super::Timestamp;

    #[test]
    fn times_read_as_utc_dates() {
        assert_eq!(Timestamp(0).utc_minute(), "1970-01-01 00:00 UTC");
        assert_eq!(Timestamp(1_800_000_000_000).utc_minute(), "2027-01-15 08:00 UTC");
        assert_eq!(Timestamp(951_782_400_000).utc_minute(), "2000-02-29 00:00 UTC");
        assert_eq!(Timestamp(-60_000).utc_minute(), "1969-12-31 23:59 UTC");
        assert_eq!(Timestamp(19_723 * 86_400_000 + 3_723_000).utc_minute(), "2024-01-01 01:02 UTC");
    }
}
