/**
 * `npm run bench -- <name> [--size small|full] [--doc | --no-doc]`
 *
 * Runs one benchmark (or `all`, one after another), prints its table of
 * ratios and its targets as PASS/MISS, and, for full-size runs (or with
 * --doc), replaces its section of docs/benchmarks.md. Small size is what CI
 * runs to prove the benchmarks work; it exits non-zero only when a benchmark
 * could not run, never because a target was missed.
 */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { backupBench } from './backup';
import { type BenchOptions } from './common';
import { concurrencyBench } from './concurrency';
import { imagesBench } from './images';
import { overheadBench } from './overhead';
import { pipelineBench } from './pipeline';
import { printReport, writeDoc, SECTION_ORDER, DOC_PATH, type BenchReport, type Size } from './report';
import { rollbackBench } from './rollback';
import { scaleOutBench } from './scale-out';

type Bench = (opts: BenchOptions, log: (s: string) => void) => Promise<BenchReport>;

const BENCHES: Record<string, Bench> = {
  backup: backupBench,
  images: imagesBench,
  rollback: rollbackBench,
  overhead: overheadBench,
  concurrency: concurrencyBench,
  'scale-out': scaleOutBench,
  pipeline: pipelineBench,
};

function usage(): never {
  console.error(
    `usage: npm run bench -- <${[...SECTION_ORDER, 'all'].join('|')}> [--size small|full] [--doc | --no-doc]`,
  );
  process.exit(2);
}

function parseArgs(argv: string[]): { names: string[]; size: Size; doc: boolean } {
  const names: string[] = [];
  let size: Size = 'full';
  let doc: boolean | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--size') {
      const v = argv[++i];
      if (v !== 'small' && v !== 'full') usage();
      size = v;
    } else if (a.startsWith('--size=')) {
      const v = a.slice('--size='.length);
      if (v !== 'small' && v !== 'full') usage();
      size = v;
    } else if (a === '--doc') doc = true;
    else if (a === '--no-doc') doc = false;
    else if (a === 'all') names.push(...SECTION_ORDER);
    else if (a in BENCHES) names.push(a);
    else usage();
  }
  if (!names.length) usage();
  return { names, size, doc: doc ?? size === 'full' };
}

async function run(): Promise<void> {
  const { names, size, doc } = parseArgs(process.argv.slice(2));
  // The SDK's INFO lines (worker state changes) would bury the figures.
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const failed: string[] = [];
  const t0 = Date.now();
  for (const name of names) {
    const log = (s: string) => console.log(`[${name}] ${s}`);
    try {
      const report = await BENCHES[name]({ size }, log);
      printReport(report);
      if (doc) {
        writeDoc(report);
        log(`section written to ${DOC_PATH}`);
      }
    } catch (err) {
      failed.push(name);
      console.error(`[${name}] failed:`, err);
    }
  }
  console.log(
    `bench: ${names.length - failed.length} of ${names.length} ran in ${Math.round((Date.now() - t0) / 1000)} s${failed.length ? `; failed: ${failed.join(', ')}` : ''}`,
  );
  if (failed.length) process.exitCode = 1;
}

run().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
