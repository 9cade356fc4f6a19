/** docs/reliability.md lists the secrets the scans look for, generated from the list the scans use. */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { secretsSection, WORKER_SECRETS } from '../helpers/secrets';
import { REPO_ROOT } from '../helpers/tools';

test('the scanned secrets in docs/reliability.md are the ones test/helpers/secrets.ts scans for', () => {
  const doc = readFileSync(path.join(REPO_ROOT, 'docs', 'reliability.md'), 'utf8');
  // Regenerate with: npx tsx -e "require('./test/helpers/secrets').writeSecretsSection('docs/reliability.md')"
  expect(doc).toContain(secretsSection());
});

test('the list covers every secret the worker holds', () => {
  expect(WORKER_SECRETS.map((s) => s.name)).toEqual(
    expect.arrayContaining([
      'REGISTRY_PASSWORD',
      'DEPLOY_CODEC_KEY',
      'TEMPORAL_API_KEY',
      'ServiceAccount token',
      'SLACK_WEBHOOK_URL',
      'DEPLOY_WEBHOOK_URL',
      'TEAMS_WEBHOOK_URL',
      'SMTP_PASSWORD',
      'INFLUXDB_PASSWORD',
      'DEMO_METRICS_API_KEY',
      'DATABASE_URL password',
      'REDIS_URL password',
      'SMOKE_PASSWORD',
    ]),
  );
});
