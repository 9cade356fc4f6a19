/**
 * The requester can only tighten the operator's policy: the deploy input may
 * add gates, lengthen soaks, add canary steps and analyse more often, but
 * every loosening is refused by the planner (before any side effect) with one
 * line naming the field and what the config allows.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { parseConfig, type DeployConfig } from '../../src/domain/config';
import { allowedStrategies } from '../../src/domain/policy';
import { REPO_ROOT } from '../helpers/tools';
import { checkInput, deployInputSchema, InputError, type DeployInput } from '../../src/domain/input';
import { buildPlan } from '../../src/domain/planner';
import { testConfig } from '../helpers/plan';

const FACTS = { workflowId: 'wf-policy', tags: ['v1.0.0'], commit: 'c0ffee0000000000000000000000000000000000' };

/** The example config (canary, steps 5/25/50/100, 5m soaks, 1m analysis) with gates configured and the default policy. */
function gatedConfig(change: (c: DeployConfig) => void = () => undefined): DeployConfig {
  const c = structuredClone(testConfig());
  c.environments.production.policy = { backup: 'required', migrations: 'required' };
  c.rollout.canary.approval = 'before-full';
  c.rollout.blueGreen.approval = true;
  change(c);
  return c;
}

const plan = (input: DeployInput, config = gatedConfig()) =>
  buildPlan(config, checkInput(deployInputSchema, input, 'deploy'), FACTS);

function refusal(input: DeployInput, config = gatedConfig()): string {
  try {
    plan(input, config);
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    return (err as Error).message;
  }
  throw new Error(`accepted: ${JSON.stringify(input)}`);
}

describe('each loosening field is refused, naming the field and what the config allows', () => {
  test.each<[string, DeployInput, RegExp]>([
    [
      'strategy rolling where the config canaries',
      { version: '1.0.1', strategy: 'rolling' },
      /strategy: "rolling" is not allowed in production: it allows canary, blue-green \(environments\.production\.policy\.strategies\)/,
    ],
    [
      'backup: false where a backup is required',
      { version: '1.0.1', backup: false },
      /backup: false: production requires a backup \(environments\.production\.policy\.backup: required\)/,
    ],
    [
      'migrate: false where migrations are required',
      { version: '1.0.1', migrate: false },
      /migrate: false: production requires migrations \(environments\.production\.policy\.migrations: required\)/,
    ],
    [
      'allowImageOverwrite where the config forbids it',
      { version: '1.0.1', allowImageOverwrite: true },
      /allowImageOverwrite: true: the config does not allow overwriting an image tag \(build\.allowOverwrite: false\)/,
    ],
    [
      'canary approval none below before-full',
      { version: '1.0.1', canary: { approval: 'none' } },
      /canary\.approval: "none" removes the configured gate \(rollout\.canary\.approval: before-full\); allowed: before-full, every-step/,
    ],
    [
      'a shorter soak',
      { version: '1.0.1', canary: { soak: '1m' } },
      /canary\.soak: 1m is shorter than the configured 5m \(rollout\.canary\.soak\); give at least 5m/,
    ],
    [
      'analysis less often',
      { version: '1.0.1', canary: { analysisInterval: '2m' } },
      /canary\.analysisInterval: 2m analyses less often than the configured 1m \(rollout\.canary\.analysisInterval\); give at most 1m/,
    ],
    [
      'steps that drop configured ones',
      { version: '1.0.1', canary: { steps: [10, 100] } },
      /canary\.steps: \[10, 100\] leaves out the configured steps 5, 25, 50 \(rollout\.canary\.steps: \[5, 25, 50, 100\]\); steps may only be added/,
    ],
    [
      'blue-green approval off',
      { version: '1.0.1', strategy: 'blue-green', blueGreen: { approval: false } },
      /blueGreen\.approval: false removes the configured approval before the switch \(rollout\.blueGreen\.approval: true\)/,
    ],
    [
      'a shorter blue-green monitor',
      { version: '1.0.1', strategy: 'blue-green', blueGreen: { monitor: '8s' } },
      /blueGreen\.monitor: 8s is shorter than the configured 5m \(rollout\.blueGreen\.monitor\); give at least 5m/,
    ],
  ])('%s', (_what, input, message) => {
    const m = refusal(input);
    expect(m).toMatch(message);
    expect(m).toMatch(/^input may only tighten the policy of production: /);
    expect(m.split('\n')).toHaveLength(1);
  });

  test('a gate below every-step is refused too', () => {
    const c = gatedConfig((x) => (x.rollout.canary.approval = 'every-step'));
    expect(refusal({ version: '1.0.1', canary: { approval: 'before-full' } }, c)).toMatch(
      /canary\.approval: "before-full" removes the configured gate \(rollout\.canary\.approval: every-step\); allowed: every-step/,
    );
  });

  test('a configured strategy list is what the input may choose from', () => {
    const c = gatedConfig(
      (x) => (x.environments.production.policy = { ...x.environments.production.policy, strategies: ['canary'] }),
    );
    expect(refusal({ version: '1.0.1', strategy: 'blue-green' }, c)).toMatch(
      /strategy: "blue-green" is not allowed in production: it allows canary/,
    );
  });
});

describe('tightening is accepted', () => {
  test('gates added, soaks lengthened, steps added, analysis more often', () => {
    const p = plan({
      version: '1.0.1',
      strategy: 'canary',
      canary: { approval: 'every-step', soak: '10m', analysisInterval: '30s', steps: [1, 5, 10, 25, 50, 75, 100] },
      blueGreen: { approval: true, monitor: '10m' },
      allowImageOverwrite: false,
      backup: true,
      migrate: true,
    });
    expect(p.canary).toMatchObject({ approval: 'every-step', soakMs: 600_000, analysisIntervalMs: 30_000 });
    expect(p.canary.steps).toEqual([1, 5, 10, 25, 50, 75, 100]);
    expect(p.blueGreen).toMatchObject({ approval: true, monitorMs: 600_000 });
    expect(p.allowImageOverwrite).toBe(false);
  });

  test('a gate where the config has none', () => {
    const c = gatedConfig((x) => {
      x.rollout.canary.approval = 'none';
      x.rollout.blueGreen.approval = false;
    });
    expect(plan({ version: '1.0.1', canary: { approval: 'before-full' } }, c).canary.approval).toBe('before-full');
    expect(
      plan({ version: '1.0.1', strategy: 'blue-green', blueGreen: { approval: true } }, c).blueGreen.approval,
    ).toBe(true);
  });

  test('blue-green where the config canaries, and canary where it is blue-green', () => {
    expect(plan({ version: '1.0.1', strategy: 'blue-green' }).strategy).toBe('blue-green');
    const bg = gatedConfig((x) => (x.rollout.strategy = 'blue-green'));
    expect(plan({ version: '1.0.1', strategy: 'canary' }, bg).strategy).toBe('canary');
    expect(refusal({ version: '1.0.1', strategy: 'rolling' }, bg)).toMatch(/strategy: "rolling" is not allowed/);
  });

  test('where the config rolls, any strategy may be chosen', () => {
    const c = gatedConfig((x) => (x.rollout.strategy = 'rolling'));
    for (const s of ['rolling', 'canary', 'blue-green'] as const)
      expect(plan({ version: '1.0.1', strategy: s }, c).strategy).toBe(s);
  });

  test('an optional backup or migration may be skipped; overwrite where the config allows it', () => {
    const c = gatedConfig((x) => {
      x.environments.production.policy = { backup: 'optional', migrations: 'optional', strategies: undefined };
      x.build.allowOverwrite = true;
    });
    const p = plan({ version: '1.0.1', backup: false, migrate: false, allowImageOverwrite: true }, c);
    expect(p).toMatchObject({ backup: false, migrate: false, allowImageOverwrite: true });
    // The config's own allowance stands when the input says nothing, and the input may still refuse it.
    expect(plan({ version: '1.0.1' }, c).allowImageOverwrite).toBe(true);
    expect(plan({ version: '1.0.1', allowImageOverwrite: false }, c).allowImageOverwrite).toBe(false);
  });

  test('the defaults are safe: backup and migrations required, no rolling where the config canaries', () => {
    const raw = parse(readFileSync(path.join(REPO_ROOT, 'deploy.config.yaml'), 'utf8'));
    delete raw.environments.production.policy;
    const c = parseConfig(raw, 'deploy.config.yaml', {});
    expect(c.environments.production.policy).toEqual({ backup: 'required', migrations: 'required' });
    expect(allowedStrategies(c, 'production')).toEqual(['canary', 'blue-green']);
    // The example writes the defaults out.
    expect(testConfig().environments.production.policy).toEqual({
      backup: 'required',
      migrations: 'required',
      strategies: ['canary', 'blue-green'],
    });
  });
});
