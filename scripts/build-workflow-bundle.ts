/**
 * Prebuilds the workflow bundle so production workers start without webpack
 * (design §3.14): `npm run build` writes dist/workflow-bundle.js.
 */
import { bundleWorkflowCode } from '@temporalio/worker';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { BUNDLE_PATH, repoRoot } from '../src/repo-root';

async function run(): Promise<void> {
  const root = repoRoot();
  const { code } = await bundleWorkflowCode({ workflowsPath: path.join(root, 'src/workflows/index.ts') });
  const out = BUNDLE_PATH;
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, code);
  console.log(`workflow bundle: ${out} (${Math.round(code.length / 1024)} KiB)`);
}

run().catch((err) => {
  console.error(err);
  process.exit(1);
});
