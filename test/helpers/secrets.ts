/**
 * Finding secrets where they must never be: workflow histories, logs,
 * summaries, notification payloads. A secret rarely leaks verbatim into a
 * Temporal history: payloads are base64 of JSON, so a password shows up
 * JSON-escaped inside base64, at any of three byte alignments. The scanner
 * looks for every form (plain, JSON-escaped, URL-encoded; each also as
 * base64 and base64url at the three alignments) and also decodes base64 runs
 * (two levels deep) to look inside them, and reports the source, line and
 * column of every hit. Generic on purpose: the reliability harness feeds it
 * whatever texts it collected.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parse } from 'yaml';

export interface Secret {
  /** Where the value comes from, e.g. SMOKE_PASSWORD; printed instead of the value. */
  name: string;
  value: string;
}

export interface ScanText {
  /** A file path or a label such as "worker log". */
  source: string;
  text: string;
}

export interface Finding {
  source: string;
  secret: string;
  /** How it appeared: plain, json-escaped, url-encoded, base64(…), base64url(…), or inside decoded base64. */
  form: string;
  /** 1-based line and column of the match (of the enclosing base64 run for decoded hits). */
  line: number;
  column: number;
  index: number;
}

/** Values shorter than this would match by chance inside base64 noise. */
export const MIN_SECRET_LENGTH = 6;

interface Needle {
  form: string;
  text: string;
}

/** The stable part of base64(pad(k) + value): characters that depend only on the value's bits. */
function base64Aligned(value: Buffer, offset: number, url: boolean): string {
  const b64 = Buffer.concat([Buffer.alloc(offset), value]).toString(url ? 'base64url' : 'base64');
  const start = Math.ceil((8 * offset) / 6);
  const end = Math.floor((8 * (offset + value.length)) / 6);
  return b64.slice(start, end);
}

/** Every form a secret can take in JSON, URLs and base64 payloads. */
export function secretForms(value: string): Needle[] {
  const textual: Needle[] = [{ form: 'plain', text: value }];
  const json = JSON.stringify(value).slice(1, -1);
  if (json !== value) textual.push({ form: 'json-escaped', text: json });
  const url = encodeURIComponent(value);
  if (url !== value) textual.push({ form: 'url-encoded', text: url });
  const out = [...textual];
  for (const t of textual) {
    const bytes = Buffer.from(t.text, 'utf8');
    for (const offset of [0, 1, 2]) {
      for (const url64 of [false, true]) {
        const text = base64Aligned(bytes, offset, url64);
        if (text.length >= MIN_SECRET_LENGTH)
          out.push({ form: `${url64 ? 'base64url' : 'base64'}(${t.form}, offset ${offset})`, text });
      }
    }
  }
  // The same needle can come from two forms (e.g. base64 and base64url agree without + or /): keep the first.
  const seen = new Set<string>();
  return out.filter((n) => (seen.has(n.text) ? false : (seen.add(n.text), true)));
}

function position(text: string, index: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < index; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: index - lineStart + 1 };
}

function allIndexes(haystack: string, needle: string): number[] {
  const found: number[] = [];
  for (let i = haystack.indexOf(needle); i !== -1; i = haystack.indexOf(needle, i + 1)) found.push(i);
  return found;
}

const BASE64_RUN = /[A-Za-z0-9+/_-]{12,}={0,2}/g;

/** Base64 runs that decode to mostly printable text (payload JSON, nested payloads), with their offsets. */
function decodedRuns(text: string): { index: number; decoded: string }[] {
  const runs: { index: number; decoded: string }[] = [];
  for (const m of text.matchAll(BASE64_RUN)) {
    const raw = m[0];
    const decoded = Buffer.from(raw.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8');
    if (!decoded) continue;
    let printable = 0;
    for (const ch of decoded) if (ch >= ' ' || ch === '\n' || ch === '\t' || ch === '\r') printable++;
    if (printable / decoded.length >= 0.8) runs.push({ index: m.index, decoded });
  }
  return runs;
}

/**
 * Every place a secret appears in the texts, in any of its forms. Secrets
 * shorter than MIN_SECRET_LENGTH are refused (they cannot be told apart from
 * noise; make test secrets longer), empty ones are skipped.
 */
export function scanForSecrets(texts: readonly ScanText[], secrets: readonly Secret[]): Finding[] {
  const active = secrets.filter((s) => s.value.length > 0);
  for (const s of active) {
    if (s.value.length < MIN_SECRET_LENGTH)
      throw new Error(
        `secret ${s.name} is shorter than ${MIN_SECRET_LENGTH} characters: it cannot be scanned for reliably`,
      );
  }
  const needles = active.map((s) => ({ secret: s, forms: secretForms(s.value) }));
  const findings: Finding[] = [];
  const seen = new Set<string>();
  const add = (f: Finding) => {
    const key = `${f.source}\u0000${f.secret}\u0000${f.index}`;
    if (!seen.has(key)) {
      seen.add(key);
      findings.push(f);
    }
  };
  for (const { source, text } of texts) {
    for (const { secret, forms } of needles) {
      for (const n of forms) {
        for (const index of allIndexes(text, n.text))
          add({ source, secret: secret.name, form: n.form, index, ...position(text, index) });
      }
    }
    // Inside base64, two levels deep: a payload's JSON holding another encoded value.
    const visit = (runs: { index: number; decoded: string }[], depth: number, outerIndex?: number) => {
      for (const run of runs) {
        const at = outerIndex ?? run.index;
        for (const { secret } of needles) {
          for (const plain of secretForms(secret.value).filter((f) => !f.form.startsWith('base64'))) {
            if (run.decoded.includes(plain.text))
              add({
                source,
                secret: secret.name,
                form: `inside decoded base64 (${plain.form})`,
                index: at,
                ...position(text, at),
              });
          }
        }
        if (depth < 2) visit(decodedRuns(run.decoded), depth + 1, at);
      }
    };
    visit(decodedRuns(text), 1);
  }
  return findings.sort(
    (a, b) => a.source.localeCompare(b.source) || a.index - b.index || a.secret.localeCompare(b.secret),
  );
}

/** One line per finding: `file:line:column: NAME (form)`; never the value itself. */
export function formatFindings(findings: readonly Finding[]): string {
  return findings.map((f) => `${f.source}:${f.line}:${f.column}: ${f.secret} (${f.form})`).join('\n');
}

/** The password of a URL such as postgres://user:pass@host/db, if it has one. */
export function urlPassword(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const p = new URL(url).password;
    return p ? decodeURIComponent(p) : undefined;
  } catch {
    return undefined;
  }
}

/** The token of a kubeconfig file's users (the worker's ServiceAccount token in the sandbox). */
export function kubeconfigToken(file: string | undefined): string | undefined {
  if (!file || !existsSync(file)) return undefined;
  const doc = parse(readFileSync(file, 'utf8')) as { users?: { user?: { token?: string } }[] } | null;
  return doc?.users?.find((u) => u.user?.token)?.user?.token;
}

/** One secret the worker holds: where it comes from, and how its value(s) are read from the worker's environment. */
export interface SecretSource {
  name: string;
  what: string;
  values(env: Record<string, string | undefined>): Secret[];
}

const plainVar = (name: string, what: string): SecretSource => ({
  name,
  what,
  values: (env) => (env[name] ? [{ name, value: env[name] }] : []),
});

const urlPasswordOf = (name: string, what: string): SecretSource => ({
  name: `${name} password`,
  what,
  values: (env) => {
    const value = urlPassword(env[name]);
    return value ? [{ name: `${name} password`, value }] : [];
  },
});

/** The URL is the credential: the whole of it, and its path on its own. */
const webhook = (name: string, what: string): SecretSource => ({
  name,
  what: `${what} (the whole URL, and its path on its own)`,
  values: (env) => {
    const url = env[name];
    if (!url) return [];
    const p = new URL(url).pathname;
    return [{ name, value: url }, ...(p.length > 8 ? [{ name: `${name} path`, value: p }] : [])];
  },
});

/**
 * Every secret the worker holds, as the scans look for them (test/e2e/secrets.test.ts,
 * the reliability harness) and as docs/reliability.md lists them.
 */
export const WORKER_SECRETS: readonly SecretSource[] = [
  plainVar('REGISTRY_PASSWORD', 'registry password (`registry.passwordEnv`)'),
  plainVar('DEPLOY_CODEC_KEY', 'payload codec key'),
  plainVar('DEPLOY_CODEC_AUTH_TOKEN', "codec server's bearer token"),
  plainVar('TEMPORAL_API_KEY', 'Temporal API key'),
  {
    name: 'ServiceAccount token',
    what: "the worker's kubeconfig token (`KUBECONFIG_WORKER`)",
    values: (env) => {
      const value = kubeconfigToken(env.KUBECONFIG_WORKER);
      return value ? [{ name: 'ServiceAccount token', value }] : [];
    },
  },
  webhook('SLACK_WEBHOOK_URL', 'Slack webhook URL (`notifications.slackWebhookEnv`)'),
  webhook('DEPLOY_WEBHOOK_URL', 'webhook URL (`notifications.webhookEnv`)'),
  webhook('TEAMS_WEBHOOK_URL', 'Microsoft Teams webhook URL (`notifications.teamsWebhookEnv`)'),
  plainVar('SMTP_PASSWORD', 'SMTP password (`notifications.email.passwordEnv`)'),
  plainVar('INFLUXDB_PASSWORD', 'InfluxDB password of the influxdb metrics provider (`analysis.influxdb.passwordEnv`)'),
  plainVar(
    'DEMO_METRICS_API_KEY',
    "the web metrics provider's API key header (`analysis.web.headers`; the sandbox demo server's `/api/metrics` key)",
  ),
  urlPasswordOf('DATABASE_URL', "PostgreSQL password in `database.urlEnv`'s URL"),
  urlPasswordOf('REDIS_URL', "Redis password in `redis.urlEnv`'s URL"),
  plainVar('SMOKE_PASSWORD', "smoke check's password (`${env:SMOKE_PASSWORD}`)"),
  plainVar('PGPASSWORD', 'PostgreSQL password, when given apart from the URL'),
  plainVar('AWS_ACCESS_KEY_ID', 'S3 access key id'),
  plainVar('AWS_SECRET_ACCESS_KEY', 'S3 secret key'),
  plainVar('AWS_SESSION_TOKEN', 'S3 session token'),
];

/** The worker's secrets present in `env`, by the name of where they come from. */
export function sandboxSecrets(env: Record<string, string | undefined>): Secret[] {
  return WORKER_SECRETS.flatMap((s) => s.values(env));
}

/** The Markdown table of the scanned secrets, for docs/reliability.md. */
export function secretsTable(): string {
  return [
    '| secret | what it is |',
    '| --- | --- |',
    ...WORKER_SECRETS.map((s) => `| \`${s.name}\` | ${s.what.replace(/\|/g, '\\|')} |`),
  ].join('\n');
}

const SECRETS_START = '<!-- reliability:secrets:start -->';
const SECRETS_END = '<!-- reliability:secrets:end -->';

/** The section of docs/reliability.md that lists what every scan looks for. */
export function secretsSection(): string {
  return `${SECRETS_START}
## The secrets every scan looks for

Every run's histories, worker log, status, summary and notifications, the
recorded end-to-end histories and the live runs of \`test/e2e/secrets.test.ts\`
(one failing in pre-flight, one whose pre-deployment check prints its
environment and every secret it is given, then fails) are searched for
these values, plainly, JSON-escaped, URL-encoded and as base64 at every
alignment (\`WORKER_SECRETS\` in \`test/helpers/secrets.ts\`; values that
are not set in a run are not searched for):

${secretsTable()}
${SECRETS_END}`;
}

/** Writes (or rewrites) that section in the document, before the first run section. */
export function writeSecretsSection(docPath: string): void {
  let doc = existsSync(docPath) ? readFileSync(docPath, 'utf8') : '';
  const start = doc.indexOf(SECRETS_START);
  if (start >= 0) {
    const end = doc.indexOf(SECRETS_END) + SECRETS_END.length;
    doc = doc.slice(0, start) + secretsSection() + doc.slice(end);
  } else {
    const at = doc.indexOf('<!-- reliability:full:start -->');
    doc = at >= 0 ? `${doc.slice(0, at)}${secretsSection()}\n\n${doc.slice(at)}` : `${doc}\n${secretsSection()}\n`;
  }
  writeFileSync(docPath, doc);
}
