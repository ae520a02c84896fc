//! Reading the live events through a consumer group, for the services that act on them (the
//! webhook dispatcher, the AI worker): a dedicated connection, the group made if missing, this
//! consumer's own unacknowledged events first, then new ones, and every so often the events a
//! stopped consumer of the group read and never acknowledged (`XAUTOCLAIM`). Reconnects on its own.

use std::time::{Duration, Instant};

use balas_domain::LiveEnvelope;
use tokio::sync::watch;

use crate::AppState;

/// Events read at most per round trip.
const BATCH: usize = 100;

/// Reads `group`'s events as `consumer` until `stop` turns true, handing each batch (the events,
/// and all the ids to acknowledge) to `on_batch`. When `on_batch` answers false (it could not act
/// on them, so acknowledged nothing), this consumer's unacknowledged events are read again after a
/// second. Events idle for `claim_after_ms` in another consumer are taken over.
///
/// `pace`: after a batch that was not full, wait this long before reading again, so that a
/// consumer for which a little delay does not matter reads tens of events per round trip instead
/// of one (zero: read again at once).
pub(crate) async fn read<F, Fut>(
    state: &AppState,
    group: &str,
    consumer: &str,
    claim_after_ms: u64,
    pace: Duration,
    mut stop: watch::Receiver<bool>,
    mut on_batch: F,
) where
    F: FnMut(Vec<LiveEnvelope>, Vec<String>) -> Fut,
    Fut: Future<Output = bool>,
{
    let mut pending = true;
    let mut last_claim = Instant::now() - Duration::from_millis(claim_after_ms);
    let pause = |mut stop: watch::Receiver<bool>| async move {
        tokio::select! { _ = stop.changed() => false, () = tokio::time::sleep(Duration::from_secs(1)) => true }
    };
    while !*stop.borrow() {
        let bus = match state.bus.dedicated().await {
            Ok(bus) => bus,
            Err(error) => {
                tracing::warn!(%error, group, "cannot connect to Redis for the live events; retrying");
                if !pause(stop.clone()).await {
                    return;
                }
                continue;
            }
        };
        if let Err(error) = bus.ensure_live_group(group).await {
            tracing::warn!(%error, group, "cannot make the live events' consumer group; retrying");
            if !pause(stop.clone()).await {
                return;
            }
            continue;
        }
        while !*stop.borrow() {
            let read = async {
                if last_claim.elapsed() >= Duration::from_millis(claim_after_ms / 4) {
                    last_claim = Instant::now();
                    let claimed = bus.claim_stale_live(group, consumer, claim_after_ms, BATCH).await?;
                    if !claimed.1.is_empty() {
                        tracing::info!(count = claimed.1.len(), group, "took over live events a stopped consumer left");
                        return Ok(claimed);
                    }
                }
                bus.read_live_group(group, consumer, BATCH, pending).await
            };
            let read = tokio::select! {
                _ = stop.changed() => return,
                read = read => read,
            };
            match read {
                Ok((events, ids)) => {
                    if pending && ids.is_empty() {
                        pending = false;
                        continue;
                    }
                    let full = ids.len() >= BATCH;
                    if !on_batch(events, ids).await {
                        pending = true;
                        if !pause(stop.clone()).await {
                            return;
                        }
                    } else if !full && !pace.is_zero() {
                        tokio::select! {
                            _ = stop.changed() => return,
                            () = tokio::time::sleep(pace) => {}
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, group, "lost the live events; reconnecting");
                    pending = true;
                    break;
                }
            }
        }
    }
}
