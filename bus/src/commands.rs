//! Commands for channels' sessions: the server asks, the worker that holds the channel acts.
//!
//! One stream for all channels; every WhatsApp worker reads it from where it started and acts on
//! the commands of the channels it holds. They are hints with a short life (typing, read
//! receipts): a command for a channel no worker holds at that moment is not kept for later.

use balas_domain::SessionCommand;
use redis::AsyncCommands;
use redis::streams::{StreamReadOptions, StreamReadReply};

use crate::{BLOCK_FOR, Bus, BusError, BusResult};

/// About how many commands are kept (they are read within moments).
const COMMANDS_KEPT: usize = 10_000;

impl Bus {
    pub async fn send_session_command(&self, command: &SessionCommand) -> BusResult<()> {
        let json = serde_json::to_string(command).expect("SessionCommand serializes");
        let mut conn = self.conn.clone();
        redis::cmd("XADD")
            .arg(self.keys.session_commands())
            .arg("MAXLEN")
            .arg("~")
            .arg(COMMANDS_KEPT)
            .arg("*")
            .arg("c")
            .arg(json)
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// The id of the newest command (`0-0` when there is none): where a new reader starts.
    pub async fn session_commands_tail(&self) -> BusResult<String> {
        let mut conn = self.conn.clone();
        let reply: redis::streams::StreamRangeReply =
            conn.xrevrange_count(self.keys.session_commands(), "+", "-", 1).await?;
        Ok(reply.ids.first().map_or_else(|| "0-0".to_owned(), |entry| entry.id.clone()))
    }

    /// Commands after `after`, waiting up to [`BLOCK_FOR`] for the first (call on a
    /// [`Bus::dedicated`] bus). Returns them with the id of the last one read.
    pub async fn read_session_commands(
        &self,
        after: &str,
        count: usize,
    ) -> BusResult<(Vec<SessionCommand>, Option<String>)> {
        let options = StreamReadOptions::default().count(count).block(BLOCK_FOR.as_millis() as usize);
        let mut conn = self.conn.clone();
        let reply: Option<StreamReadReply> =
            conn.xread_options(&[self.keys.session_commands()], &[after], &options).await?;
        let mut last = None;
        let mut commands = Vec::new();
        for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
            last = Some(entry.id.clone());
            let json: Option<String> = entry.get("c");
            match json.map(|json| serde_json::from_str::<SessionCommand>(&json)) {
                Some(Ok(command)) => commands.push(command),
                _ => tracing::warn!("{}", BusError::Corrupt(format!("session command {} is not valid", entry.id))),
            }
        }
        Ok((commands, last))
    }
}
