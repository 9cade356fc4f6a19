/**
 * A process's memory and disk writes, from /proc. Apart from common.ts so a
 * measured worker process (backup-worker.ts) loads only what it measures with,
 * not the benchmarks' own clients.
 */
import { readFileSync, writeFileSync } from 'node:fs';

/** VmRSS / VmHWM (peak RSS) of a process, in bytes; NaN when the process is gone. */
export function procStatus(pid: number | 'self', field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/**
 * Bytes a process caused to be written to storage (/proc/<pid>/io
 * write_bytes). Children it has reaped are included: the kernel adds a
 * waited-for child's I/O to its parent's counters.
 */
export function procWriteBytes(pid: number | 'self'): number {
  try {
    const m = /^write_bytes:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** Resets the kernel's peak-RSS counter of this process; false where that is not permitted. */
export function resetPeakRss(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/** Samples a process's RSS; the peak is the larger of the samples and the kernel's VmHWM when asked. */
export class RssSampler {
  private timer?: NodeJS.Timeout;
  peak = 0;
  last = 0;
  readonly samples: { t: number; rss: number }[] = [];

  constructor(
    private readonly pid: number | 'self',
    private readonly intervalMs = 100,
  ) {}

  start(): this {
    const sample = () => {
      const rss = this.pid === 'self' ? process.memoryUsage().rss : procStatus(this.pid, 'VmRSS');
      if (!Number.isFinite(rss)) return;
      this.last = rss;
      this.peak = Math.max(this.peak, rss);
      if (this.samples.length < 100_000) this.samples.push({ t: Date.now(), rss });
    };
    sample();
    this.timer = setInterval(sample, this.intervalMs);
    return this;
  }

  stop(): number {
    clearInterval(this.timer);
    return this.peak;
  }
}
