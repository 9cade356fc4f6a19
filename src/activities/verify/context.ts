/**
 * What every post-deployment check shares: the verification config, the
 * worker's environment, the logger, the clock, and the secrets that must be
 * removed from whatever a check reports or logs.
 */
import type { DeployConfig } from '../../domain/config';
import { redact, secretValues } from '../../domain/verification';
import type { MetricsProviderFactory } from '../analysis/provider';
import { messageOf } from '../failures';
import { activityLogger, type Logger } from '../runtime';
import type { PodReader } from './cluster-health';
import type { KubeClients } from '../clients/kube';

/** The clients and settings the verification activities are built over; everything but config and env has a default. */
export interface VerifyDeps {
  config: DeployConfig;
  /** The worker's environment: smoke credentials, DATABASE_URL, REDIS_URL. */
  env: Record<string, string | undefined>;
  /** Defaults to a reader over `kubeConfig`. */
  pods?: PodReader;
  /** The worker's one set of Kubernetes clients (activities/deps.ts); built from config.kubernetes.kubeconfig on first use when absent. */
  kubeClients?: KubeClients;
  /** Metrics providers added to (or replacing) the built-in ones, by the name config analysis.provider selects. */
  providers?: Record<string, MetricsProviderFactory>;
  log?: Logger;
  now?: () => Date;
}

/** What each check is built over (checkContext makes it from VerifyDeps, filling the defaults). */
export interface CheckContext {
  config: DeployConfig;
  env: Record<string, string | undefined>;
  log: Logger;
  now: () => Date;
  /** The secret values in the worker's environment (database and Redis URLs, webhooks), read at call time. */
  envSecrets: () => string[];
  /** An error's message with those secrets removed. */
  describe: (err: unknown) => string;
}

/** The context of the checks: the deps with the logger and clock defaulted and the secrets to redact read from the environment named by config. */
export function checkContext(deps: VerifyDeps): CheckContext {
  const { config, env } = deps;
  const envSecrets = () =>
    secretValues(env, [
      config.database.urlEnv,
      config.redis.urlEnv,
      config.notifications.slackWebhookEnv,
      config.notifications.webhookEnv,
      config.notifications.teamsWebhookEnv,
      config.notifications.email?.passwordEnv,
    ]);
  return {
    config,
    env,
    log: deps.log ?? activityLogger(),
    now: deps.now ?? (() => new Date()),
    envSecrets,
    describe: (err) => redact(messageOf(err), envSecrets()),
  };
}
