/**
 * The platform containers' logs, written where kwok serves them from (its
 * ClusterLogs, scripts/sandbox/kube.ts): one file per container, in the CRI
 * format a kubelet's runtime writes, so the apiserver's pods/log endpoint and
 * `kubectl logs` return these lines, `--since` and `--limit-bytes` included.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import type { SimulatedRequest } from './synthetic-traffic';
import type { Track, TrafficState } from './types';

/** One CRI log line: timestamp, stream, "F" for a full line, the text. */
export function criLine(at: Date, text: string, stream: 'stdout' | 'stderr' = 'stdout'): string {
  return `${at.toISOString()} ${stream} F ${text.replace(/\n/g, ' ')}\n`;
}

/** What one second of the traffic service's requests logs, per track. */
export function trafficLogLines(requests: readonly SimulatedRequest[], traffic: TrafficState): string[] {
  const lines: string[] = [];
  for (const track of ['stable', 'canary'] as Track[]) {
    const mine = requests.filter((r) => r.track === track);
    if (!mine.length) continue;
    const failed = mine.filter((r) => r.code >= 500).length;
    const version = traffic.versions[track] ?? 'unknown';
    lines.push(`INFO POST /v1/chat/completions: ${mine.length} requests served (${track}, ${version})`);
    if (failed)
      lines.push(`ERROR POST /v1/chat/completions: ${failed} of ${mine.length} requests failed with 500 (${track})`);
  }
  return lines;
}

/** The line a container with an injected log fault writes every second. */
export const INJECTED_ERROR_LINE = 'ERROR connection to postgres reset by peer (fault injected)';

export class ContainerLogs {
  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  write(container: string, lines: readonly string[], at = new Date()): void {
    if (!lines.length) return;
    appendFileSync(path.join(this.dir, `${container}.log`), lines.map((l) => criLine(at, l)).join(''));
  }
}
