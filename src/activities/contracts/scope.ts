/**
 * The environment an activity call acts on (activities/routing.ts): its
 * cluster, database, bucket, metrics and URLs are that environment's.
 * Requests recorded before environments had their own back ends carry none
 * and act on the default environment.
 */
export interface InEnvironment {
  /** Optional in the type so adapters and their tests can be called directly; the workflows always set it. */
  environment?: string;
  /** Which of the environment's clusters (environments.<name>.clusters); none: its first, or only, one. */
  cluster?: string;
}
