/**
 * `npm run sandbox -- up | down | status | reset | fault`: the runbook's
 * production stack, real and local, on 127.0.0.1.
 */
import { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { DIR, ensureDir, ROOT, type Component } from './common';
import { kubeComponent } from './kube';

function components(): Component[] {
  return [kubeComponent()];
}

function writeEnv(list: Component[]): string {
  const env: Record<string, string> = { SANDBOX_DIR: DIR };
  for (const c of list) Object.assign(env, c.env?.() ?? {});
  const file = path.join(ensureDir(), 'env');
  writeFileSync(file, Object.entries(env).map(([k, v]) => `${k}=${v}`).join('\n') + '\n', { mode: 0o600 });
  return file;
}

async function up(only?: string[]): Promise<void> {
  const list = components().filter((c) => !only?.length || only.includes(c.name));
  const total = Date.now();
  for (const c of list) {
    const t = Date.now();
    process.stdout.write(`sandbox: ${c.name} … `);
    const detail = await c.up();
    console.log(`up (${((Date.now() - t) / 1000).toFixed(1)}s) ${detail}`);
  }
  const file = writeEnv(components());
  console.log(`sandbox: all up in ${((Date.now() - total) / 1000).toFixed(1)}s; environment in ${path.relative(ROOT, file)} (set -a; . ${path.relative(ROOT, file)})`);
}

async function status(): Promise<boolean> {
  let ok = true;
  for (const c of components()) {
    const s = await c.status();
    ok &&= s.ok;
    console.log(`${s.ok ? 'up  ' : 'DOWN'} ${c.name.padEnd(12)} ${s.detail}`);
  }
  return ok;
}

async function down(): Promise<void> {
  for (const c of [...components()].reverse()) {
    await c.down();
    console.log(`sandbox: ${c.name} stopped`);
  }
}

const program = new Command('sandbox').description('The local production stack for tests and demos.');
program.command('up').argument('[components...]').description('start everything (idempotent)').action(async (only: string[]) => up(only));
program.command('status').description('print each component; exit 0 only when all are up').action(async () => {
  if (!(await status())) process.exitCode = 1;
});
program.command('down').description('stop what up started, by pid').action(down);

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`\nsandbox: ${(err as Error).message}`);
  process.exit(1);
});
