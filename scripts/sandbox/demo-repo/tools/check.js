// The platform's pre-deployment checks: each service has a Dockerfile and an
// entry point, and every migration is a non-empty .sql file.
const fs = require('fs');
const path = require('path');
const what = process.argv[2] || 'test';
const root = path.join(__dirname, '..');
let failures = 0;
for (const svc of fs.readdirSync(path.join(root, 'services'))) {
  for (const file of ['Dockerfile', 'server.js']) {
    if (!fs.existsSync(path.join(root, 'services', svc, file))) {
      console.error(`${what}: services/${svc}/${file} is missing`);
      failures++;
    }
  }
}
for (const m of fs.readdirSync(path.join(root, 'migrations'))) {
  if (!m.endsWith('.sql') || fs.statSync(path.join(root, 'migrations', m)).size === 0) {
    console.error(`${what}: migrations/${m} is not a non-empty .sql file`);
    failures++;
  }
}
if (failures) process.exit(1);
console.log(`${what}: ok`);
