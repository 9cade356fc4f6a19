/** Keeps the latest traffic state read from a TrafficSource. */
import type { TrafficSource } from './config';
import { DEFAULT_TRAFFIC, type TrafficState } from './types';
import { describeError } from './util';

function describeTraffic(state: TrafficState): string {
  const { weights, versions } = state;
  return `stable=${weights.stable} (${versions.stable}) canary=${weights.canary} (${versions.canary ?? 'none'})`;
}

/** Polls a TrafficSource, keeping the last known state on errors and logging each distinct error once. */
export class TrafficPoller {
  private current: TrafficState = DEFAULT_TRAFFIC;
  private lastError: string | null = null;
  private inFlight: Promise<void> | null = null;

  constructor(
    private readonly source: TrafficSource,
    private readonly log: (line: string) => void,
  ) {}

  /** The last state read; DEFAULT_TRAFFIC until a read succeeds. */
  get state(): TrafficState {
    return this.current;
  }

  /** Why the last read failed; null once a read succeeds. */
  get error(): string | null {
    return this.lastError;
  }

  /** Overlapping polls are coalesced so a slow API server does not pile up requests. */
  poll(): Promise<void> {
    this.inFlight ??= this.pollOnce().finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  private async pollOnce(): Promise<void> {
    try {
      const next = await this.source();
      if (this.lastError !== null) this.log('demo: kubernetes reachable again');
      this.lastError = null;
      if (describeTraffic(next) !== describeTraffic(this.current)) this.log(`demo: traffic ${describeTraffic(next)}`);
      this.current = next;
    } catch (err) {
      const message = describeError(err);
      if (message !== this.lastError) this.log(`demo: kubernetes: ${message} (keeping last known state)`);
      this.lastError = message;
    }
  }
}
