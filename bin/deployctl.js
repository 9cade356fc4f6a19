#!/usr/bin/env node
// deployctl entry point: the compiled CLI when `npm run build` has run and is
// up to date, else the TypeScript source through tsx.
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const compiled = path.join(root, 'dist', 'src', 'client.js');
const source = path.join(root, 'src', 'client.ts');
const mtime = (f) => (fs.existsSync(f) ? fs.statSync(f).mtimeMs : 0);
let cli;
if (mtime(compiled) >= mtime(source)) {
  cli = require(compiled);
} else {
  require('tsx/cjs');
  cli = require(source);
}
cli.main(process.argv).then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
