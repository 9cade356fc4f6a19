/**
 * createActivities(deps): the activity object the worker registers (design
 * §3.4). Each adapter is a thin layer over an injected client, so tests can
 * build it against the sandbox's real services.
 */
import type { DeployConfig } from '../domain/config';
import { GitRepo } from './git';
import { planActivities } from './plan';

export interface ActivityDeps {
  config: DeployConfig;
  git: GitRepo;
}

export function createActivities(deps: ActivityDeps) {
  return {
    ...planActivities({ config: deps.config, listTags: () => deps.git.remoteTags(), branchHead: () => deps.git.remoteBranchHead() }),
  };
}

/** Builds the real clients from config and environment (used by the worker). */
export function defaultDeps(config: DeployConfig): ActivityDeps {
  return { config, git: new GitRepo(config.git.checkout, config.git.remote, config.git.branch) };
}
