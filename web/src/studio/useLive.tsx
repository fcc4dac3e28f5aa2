// React glue for LiveChannel: follows one channel while mounted, batches events.

import { useEffect, useRef, useState } from 'react';
import { api, type StoredEvent } from './api';
import { LiveChannel, type LiveStatus, type SocketLike } from './live';

export const initialLiveStatus: LiveStatus = { state: 'connecting', lastSeq: 0, heartbeatSeq: null, attempt: 0, retryInMs: null, error: null, connections: 0 };

/** Follows `channel` (null: nothing) from since=0; `onEvents` gets batches (≤ every 100 ms). */
export function useLiveChannel(channel: string | null, onEvents: (events: StoredEvent[]) => void): LiveStatus {
  const [status, setStatus] = useState<LiveStatus>(initialLiveStatus);
  const cb = useRef(onEvents);
  cb.current = onEvents;
  useEffect(() => {
    if (!channel) return;
    setStatus(initialLiveStatus);
    const ch = new LiveChannel({
      url: (since) => api.wsUrl(location, channel, since),
      connect: (url) => new WebSocket(url) as unknown as SocketLike,
      onEvents: (ev) => cb.current(ev),
      onStatus: setStatus,
      batchMs: 100,
    }).start();
    return () => ch.stop();
  }, [channel]);
  return status;
}

export function WsBadge({ status }: { status: LiveStatus }) {
  const retry = status.state === 'reconnecting' && status.retryInMs !== null ? ` in ${(status.retryInMs / 1000).toFixed(1)} s` : '';
  return (
    <span className={`ws-badge ws-${status.state}`}>
      live: <span data-testid="ws-state">{status.state}</span>
      {retry} · seq <span data-testid="ws-seq">{status.lastSeq}</span>
      {status.error ? <span className="warn"> · {status.error}</span> : null}
    </span>
  );
}
