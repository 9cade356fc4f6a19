/** The project's root folder, whether code runs from src/ (tsx) or from dist/ (compiled). */
import { existsSync } from 'node:fs';
import * as path from 'node:path';

export function repoRoot(from = __dirname): string {
  let dir = from;
  while (!existsSync(path.join(dir, 'package.json')) || path.basename(dir) === 'dist') {
    const up = path.dirname(dir);
    if (up === dir) return from;
    dir = up;
  }
  return dir;
}

export const BUNDLE_PATH = path.join(repoRoot(), 'dist', 'workflow-bundle.js');
