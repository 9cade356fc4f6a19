/**
 * The requester can only tighten the operator's policy. The deploy input may
 * add gates, lengthen soaks and the blue-green monitoring window, add canary
 * steps and analyse more often; it may never remove a configured gate,
 * shorten a wait below the config, skip a backup or migrations the
 * environment requires, allow an image overwrite the config does not, or
 * pick a strategy the environment forbids. Whoever can start a workflow is
 * not thereby the operator: the config (read on the worker) is the floor.
 *
 * Pure: the planner calls it, so a loosening is refused by resolvePlan before
 * any side effect, with one line naming the field and what the config allows.
 */
import type { DeployConfig } from './config';
import { formatDuration } from './duration';
import { InputError, type CheckedDeployInput } from './input';
import { stepWeights } from './plan';

export type Strategy = DeployConfig['rollout']['strategy'];
export type CanaryApproval = DeployConfig['rollout']['canary']['approval'];

/** Canary gates from none to the most: an input may move right, never left. */
const APPROVAL_ORDER: readonly CanaryApproval[] = ['none', 'before-full', 'every-step'];

/**
 * The strategies an environment allows: its policy's list, or those at least
 * as safe as rollout.strategy. Rolling has no traffic gate, so where the
 * config shifts traffic gradually (canary) or switches it after checks
 * (blue-green) rolling would skip what the operator asked for.
 */
export function allowedStrategies(config: DeployConfig, environment: string): Strategy[] {
  const listed = config.environments[environment]?.policy?.strategies;
  if (listed) return [...listed];
  return config.rollout.strategy === 'rolling' ? ['rolling', 'canary', 'blue-green'] : ['canary', 'blue-green'];
}

/** What the input may set, resolved against the config: the config's value unless the input tightens it. */
export interface TightenedSettings {
  strategy: Strategy;
  backup: boolean;
  migrate: boolean;
  allowImageOverwrite: boolean;
  canary: {
    steps: number[];
    soakMs: number;
    analysisIntervalMs: number;
    approval: CanaryApproval;
    approvalTimeoutMs: number;
  };
  blueGreen: { monitorMs: number; approval: boolean; approvalTimeoutMs: number };
}

/** Throws InputError for the first field of `input` that loosens the config of `environment`. */
export function tightenOnly(config: DeployConfig, environment: string, input: CheckedDeployInput): TightenedSettings {
  const policy = config.environments[environment]?.policy ?? { backup: 'required', migrations: 'required' };
  const refuse = (field: string, why: string): never => {
    throw new InputError(`input may only tighten the policy of ${environment}: ${field}: ${why}`);
  };
  const at = `environments.${environment}.policy`;

  const strategies = allowedStrategies(config, environment);
  const strategy = input.strategy ?? config.rollout.strategy;
  if (!strategies.includes(strategy))
    refuse(
      'strategy',
      `"${strategy}" is not allowed in ${environment}: it allows ${strategies.join(', ')} (${at}.strategies)`,
    );

  if (input.backup === false && policy.backup === 'required')
    refuse('backup', `false: ${environment} requires a backup (${at}.backup: required)`);
  if (input.migrate === false && policy.migrations === 'required')
    refuse('migrate', `false: ${environment} requires migrations (${at}.migrations: required)`);
  if (input.allowImageOverwrite === true && !config.build.allowOverwrite)
    refuse(
      'allowImageOverwrite',
      'true: the config does not allow overwriting an image tag (build.allowOverwrite: false)',
    );

  const c = config.rollout.canary;
  const o = input.canary ?? {};
  if (o.approval !== undefined && APPROVAL_ORDER.indexOf(o.approval) < APPROVAL_ORDER.indexOf(c.approval))
    refuse(
      'canary.approval',
      `"${o.approval}" removes the configured gate (rollout.canary.approval: ${c.approval}); allowed: ${APPROVAL_ORDER.slice(APPROVAL_ORDER.indexOf(c.approval)).join(', ')}`,
    );
  atLeast('canary.soak', o.soak, c.soak, 'rollout.canary.soak', refuse);
  if (o.analysisInterval !== undefined && o.analysisInterval > c.analysisInterval)
    refuse(
      'canary.analysisInterval',
      `${formatDuration(o.analysisInterval)} analyses less often than the configured ${formatDuration(c.analysisInterval)} (rollout.canary.analysisInterval); give at most ${formatDuration(c.analysisInterval)}`,
    );
  if (o.steps) {
    const dropped = stepWeights(c.steps).filter((s) => !o.steps!.includes(s));
    if (dropped.length)
      refuse(
        'canary.steps',
        `[${o.steps.join(', ')}] leaves out the configured steps ${dropped.join(', ')} (rollout.canary.steps: [${stepWeights(c.steps).join(', ')}]); steps may only be added`,
      );
  }

  const b = config.rollout.blueGreen;
  const ob = input.blueGreen ?? {};
  if (ob.approval === false && b.approval)
    refuse(
      'blueGreen.approval',
      'false removes the configured approval before the switch (rollout.blueGreen.approval: true)',
    );
  atLeast('blueGreen.monitor', ob.monitor, b.monitor, 'rollout.blueGreen.monitor', refuse);

  return {
    strategy,
    backup: input.backup ?? true,
    migrate: input.migrate ?? true,
    allowImageOverwrite: input.allowImageOverwrite ?? config.build.allowOverwrite,
    canary: {
      steps: o.steps ?? stepWeights(c.steps),
      soakMs: o.soak ?? c.soak,
      analysisIntervalMs: o.analysisInterval ?? c.analysisInterval,
      approval: o.approval ?? c.approval,
      approvalTimeoutMs: o.approvalTimeout ?? c.approvalTimeout,
    },
    blueGreen: {
      monitorMs: ob.monitor ?? b.monitor,
      approval: ob.approval ?? b.approval,
      approvalTimeoutMs: ob.approvalTimeout ?? b.approvalTimeout,
    },
  };
}

/** A wait the input may lengthen, never shorten. */
function atLeast(
  field: string,
  given: number | undefined,
  configured: number,
  where: string,
  refuse: (field: string, why: string) => never,
): void {
  if (given !== undefined && given < configured)
    refuse(
      field,
      `${formatDuration(given)} is shorter than the configured ${formatDuration(configured)} (${where}); give at least ${formatDuration(configured)}`,
    );
}
