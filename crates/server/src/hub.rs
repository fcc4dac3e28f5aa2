//! Live fan-out of store events to WebSocket subscribers. Training writes events to SQLite
//! only (often from another process), so someone has to poll: one poller thread per channel
//! that has subscribers (not one per subscriber), broadcasting each new event, serialised
//! once, to every subscriber of that channel. A subscriber replays from the store first, so a
//! reconnect with `since=SEQ` loses nothing; one that falls behind the broadcast buffer is
//! dropped with a resync message and never slows the poller or the others.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, Mutex};

/// One event as sent on the wire: its sequence number and the serialised message.
pub type Wire = Arc<(i64, String)>;

/// Messages a slow subscriber may fall behind by before it is dropped.
const BUFFER: usize = 4096;

pub fn event_message(channel: &str, seq: i64, body: &serde_json::Value) -> String {
    serde_json::json!({"type": "event", "channel": channel, "seq": seq, "body": body}).to_string()
}

pub struct Hub {
    store: PathBuf,
    poll: Duration,
    channels: Mutex<HashMap<String, broadcast::Sender<Wire>>>,
}

impl Hub {
    pub fn new(store: PathBuf, poll: Duration) -> Arc<Hub> {
        Arc::new(Hub { store, poll, channels: Mutex::new(HashMap::new()) })
    }

    /// A receiver of every event of `channel` appended after this call returns (possibly with
    /// some the caller also replays; callers skip seq ≤ what they have). A new channel's poller
    /// starts from the channel's end read *before* the receiver is handed out, under the map
    /// lock, so nothing falls between a subscriber's replay and the live stream.
    pub async fn subscribe(self: &Arc<Self>, channel: &str) -> broadcast::Receiver<Wire> {
        let mut map = self.channels.lock().await;
        if let Some(tx) = map.get(channel) {
            return tx.subscribe();
        }
        let (path, ch) = (self.store.clone(), channel.to_string());
        let start = tokio::task::spawn_blocking(move || if path.is_file() { tinycats_track::Store::open(&path).and_then(|s| s.last_seq(&ch)).unwrap_or(0) } else { 0 }).await.unwrap_or(0);
        let (tx, rx) = broadcast::channel(BUFFER);
        map.insert(channel.to_string(), tx.clone());
        let (hub, ch) = (self.clone(), channel.to_string());
        std::thread::Builder::new().name(format!("hub {ch}")).spawn(move || hub.poll_channel(&ch, tx, start)).expect("spawn poller thread");
        rx
    }

    /// Polls the store for events of one channel after `last` until it has no subscribers left.
    fn poll_channel(&self, channel: &str, tx: broadcast::Sender<Wire>, mut last: i64) {
        let mut store = None;
        loop {
            if tx.receiver_count() == 0 {
                let mut map = self.channels.blocking_lock();
                // Re-check under the lock: a subscriber may have joined meanwhile.
                if tx.receiver_count() == 0 {
                    map.remove(channel);
                    return;
                }
            }
            if store.is_none() && self.store.is_file() {
                store = tinycats_track::Store::open(&self.store).ok();
            }
            if let Some(s) = &store {
                if let Ok(evs) = s.events_since(channel, last) {
                    for (seq, body) in evs {
                        last = seq;
                        let _ = tx.send(Arc::new((seq, event_message(channel, seq, &body))));
                    }
                }
            }
            std::thread::sleep(self.poll);
        }
    }
}
