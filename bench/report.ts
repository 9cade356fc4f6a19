/**
 * What every benchmark prints and records: the machine it ran on, the exact
 * command, tables of measurements with ratios, and each target as PASS or
 * MISS. Ratios, not absolute times, are what the figures are for: these
 * machines are shared and noisy, so only quantities measured side by side in
 * one run are compared with each other.
 *
 * docs/benchmarks.md keeps one section per benchmark between markers; a run
 * replaces its own section (or appends it) and regenerates the summary table
 * at the top from the JSON each section carries in a comment.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT } from '../test/helpers/tools';

export type Size = 'small' | 'full';

export interface Table {
  title?: string;
  columns: string[];
  rows: (string | number)[][];
}

/** One target of the issue, judged on this run's figures. */
export interface Target {
  name: string;
  /** The figure that was compared, as text (e.g. "0.82x", "143 MiB"). */
  measured: string;
  /** The target as the issue states it (e.g. "<= 1.5x pg_dump"). */
  wanted: string;
  pass: boolean;
  /** Why it passed or missed, when that is not obvious from the figures. */
  why?: string;
}

export interface BenchReport {
  name: string;
  title: string;
  size: Size;
  /** What was run, in a line or two (sizes, counts, settings). */
  setup: string[];
  tables: Table[];
  targets: Target[];
  notes: string[];
  startedAt: Date;
  durationMs: number;
  /** Load average when the benchmark started and ended: a hint of how noisy the run was. */
  load: { start: number[]; end: number[] };
}

/** What every report says about its run the same way: its size, when it started, how long it took, the load. */
export function runInfo(
  size: Size,
  startedAt: Date,
  loadStart: number[],
): Pick<BenchReport, 'size' | 'startedAt' | 'durationMs' | 'load'> {
  return {
    size,
    startedAt,
    durationMs: Date.now() - startedAt.getTime(),
    load: { start: loadStart, end: os.loadavg() },
  };
}

export interface Machine {
  cpus: number;
  cpuModel: string;
  memory: string;
  node: string;
  kernel: string;
}

export function machine(): Machine {
  let cpus = os.availableParallelism();
  try {
    cpus = Number(execFileSync('nproc', { encoding: 'utf8' }).trim()) || cpus;
  } catch {
    // nproc missing: Node's count is the same figure
  }
  return {
    cpus,
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    memory: `${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
  };
}

// --- formatting ------------------------------------------------------------------

export function ms(n: number): string {
  if (!Number.isFinite(n)) return 'n/a';
  if (Math.abs(n) >= 10_000) return `${(n / 1000).toFixed(1)} s`;
  if (Math.abs(n) >= 100) return `${Math.round(n)} ms`;
  return `${n.toFixed(1)} ms`;
}

export function ratio(n: number): string {
  return Number.isFinite(n) ? `${n.toFixed(2)}x` : 'n/a';
}

export function mib(bytes: number): string {
  return Number.isFinite(bytes) ? `${(bytes / 1024 / 1024).toFixed(1)} MiB` : 'n/a';
}

/** Nearest-rank percentile (p in 0..100) of the finite values; NaN when there are none. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (!sorted.length) return NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1];
}

/** The middle value, or the mean of the two middle values of an even count; NaN when there are none. */
export function median(values: readonly number[]): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (!sorted.length) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function renderTable(t: Table, markdown: boolean): string {
  // A "|" inside a Markdown cell (`pg_dump | gzip`) would end the cell.
  const rows = t.rows.map((r) => r.map((c) => (markdown ? String(c).replace(/\|/g, '\\|') : String(c))));
  const widths = t.columns.map((c, i) => Math.max(c.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    markdown
      ? `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`
      : cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  const out = [
    line(t.columns),
    markdown ? `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|` : widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.map(line),
  ];
  if (t.title) out.unshift(markdown ? `**${t.title}**\n` : `${t.title}:`);
  return out.join('\n');
}

function targetRows(targets: Target[]): Table {
  return {
    columns: ['target', 'measured', 'wanted', 'result'],
    rows: targets.map((t) => [t.name, t.measured, t.wanted, t.pass ? 'PASS' : `MISS${t.why ? ` (${t.why})` : ''}`]),
  };
}

/** The command that reproduces this run. */
export function commandOf(report: Pick<BenchReport, 'name' | 'size'>): string {
  return `npm run bench -- ${report.name} --size ${report.size}`;
}

export function printReport(r: BenchReport): void {
  const m = machine();
  const parts = [
    '',
    `=== ${r.title} (${r.size}) ===`,
    `command: ${commandOf(r)}`,
    `machine: ${m.cpus} CPUs (${m.cpuModel}), ${m.memory}, node ${m.node}; load ${r.load.start.map((l) => l.toFixed(2)).join(' ')} -> ${r.load.end.map((l) => l.toFixed(2)).join(' ')}; took ${ms(r.durationMs)}`,
    ...r.setup.map((s) => `setup: ${s}`),
    '',
    ...r.tables.flatMap((t) => [renderTable(t, false), '']),
    renderTable(targetRows(r.targets), false),
    ...(r.notes.length ? ['', ...r.notes.map((n) => `note: ${n}`)] : []),
    '',
  ];
  console.log(parts.join('\n'));
}

// --- docs/benchmarks.md ---------------------------------------------------------------

export const DOC_PATH = path.join(REPO_ROOT, 'docs', 'benchmarks.md');
/** The order of the sections in the document. */
export const SECTION_ORDER = ['backup', 'images', 'rollback', 'overhead', 'concurrency', 'scale-out', 'pipeline'];

const SUMMARY_START = '<!-- bench:summary:start -->';
const SUMMARY_END = '<!-- bench:summary:end -->';
const start = (name: string) => `<!-- bench:${name}:start -->`;
const end = (name: string) => `<!-- bench:${name}:end -->`;

const HEADER = `# Benchmarks

Measured on the sandbox (\`npm run sandbox -- up\`) with \`npm run bench -- <name> [--size small|full]\`
(\`bench/run.ts\`; \`all\` runs every benchmark). The machines are shared and noisy, so every
benchmark compares quantities measured side by side **in one run** and the figures that
matter are the ratios; absolute times are given only to make the ratios checkable. Each
section says what ran, on which machine, with which exact command, and whether each target
of its performance issue was met (PASS) or not (MISS) and why.

\`--size full\` is what the sections below report and rewrites its own section of this file;
\`--size small\` is what CI runs to prove the benchmarks still work (it prints, and writes this
file only with \`--doc\`). A MISS never fails the command: benchmarks are not timed tests.
`;

interface SummaryEntry {
  name: string;
  title: string;
  size: Size;
  date: string;
  targets: Target[];
}

function renderSection(r: BenchReport): string {
  const m = machine();
  const summary: SummaryEntry = {
    name: r.name,
    title: r.title,
    size: r.size,
    date: r.startedAt.toISOString(),
    targets: r.targets,
  };
  return [
    start(r.name),
    `<!-- bench:${r.name}:summary ${JSON.stringify(summary).replace(/--/g, '-\\u002d')} -->`,
    `## ${r.title}`,
    '',
    `- command: \`${commandOf(r)}\``,
    `- machine: ${m.cpus} CPUs (${m.cpuModel}), ${m.memory} RAM, ${m.kernel}, node ${m.node}`,
    `- date: ${r.startedAt.toISOString()}; took ${ms(r.durationMs)}; load average ${r.load.start.map((l) => l.toFixed(2)).join(' / ')} at the start, ${r.load.end.map((l) => l.toFixed(2)).join(' / ')} at the end`,
    ...r.setup.map((s) => `- ${s}`),
    '',
    ...r.tables.flatMap((t) => [renderTable(t, true), '']),
    '**Targets**',
    '',
    renderTable(targetRows(r.targets), true),
    '',
    ...(r.notes.length ? [...r.notes.map((n) => `- ${n}`), ''] : []),
    end(r.name),
  ].join('\n');
}

function parseSummaries(doc: string): SummaryEntry[] {
  const out: SummaryEntry[] = [];
  for (const m of doc.matchAll(/<!-- bench:([a-z-]+):summary (\{.*\}) -->/g)) {
    try {
      out.push(JSON.parse(m[2]) as SummaryEntry);
    } catch {
      // A section edited by hand: it just drops out of the summary.
    }
  }
  return out.sort((a, b) => SECTION_ORDER.indexOf(a.name) - SECTION_ORDER.indexOf(b.name));
}

function renderSummary(entries: SummaryEntry[]): string {
  const rows = entries.flatMap((e) =>
    e.targets.map((t) => [
      e.name,
      t.name,
      t.measured,
      t.wanted,
      t.pass ? 'PASS' : 'MISS',
      `${e.size}, ${e.date.slice(0, 10)}`,
    ]),
  );
  return [
    SUMMARY_START,
    '## Summary',
    '',
    renderTable({ columns: ['benchmark', 'target', 'measured', 'wanted', 'result', 'run'], rows }, true),
    '',
    SUMMARY_END,
  ].join('\n');
}

/** Replaces (or adds, in SECTION_ORDER) this benchmark's section and regenerates the summary. */
export function writeDoc(r: BenchReport, file = DOC_PATH): void {
  let doc = existsSync(file) ? readFileSync(file, 'utf8') : `${HEADER}\n${SUMMARY_START}\n${SUMMARY_END}\n`;
  const section = renderSection(r);
  const s = doc.indexOf(start(r.name));
  const e = doc.indexOf(end(r.name));
  if (s >= 0 && e > s) {
    doc = doc.slice(0, s) + section + doc.slice(e + end(r.name).length);
  } else {
    // Before the first section that comes after this one, else at the end.
    const later = SECTION_ORDER.slice(SECTION_ORDER.indexOf(r.name) + 1)
      .map((n) => doc.indexOf(start(n)))
      .filter((i) => i >= 0);
    const at = later.length ? Math.min(...later) : -1;
    doc = at >= 0 ? `${doc.slice(0, at)}${section}\n\n${doc.slice(at)}` : `${doc.trimEnd()}\n\n${section}\n`;
  }
  const ss = doc.indexOf(SUMMARY_START);
  const se = doc.indexOf(SUMMARY_END);
  const summary = renderSummary(parseSummaries(doc));
  doc =
    ss >= 0 && se > ss
      ? doc.slice(0, ss) + summary + doc.slice(se + SUMMARY_END.length)
      : doc.replace(/\n/, `\n\n${summary}\n`);
  writeFileSync(file, doc);
}
