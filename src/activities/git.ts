/**
 * git adapter: the release checkout and its origin. Every call is an argument
 * array (no shell); credentials come from the environment (GIT_ASKPASS,
 * credential helpers, SSH agent), never from workflow input.
 */
import { runOk } from './process';

export class GitRepo {
  constructor(
    readonly dir: string,
    readonly remote = 'origin',
  ) {}

  async git(args: string[], timeoutMs = 60_000): Promise<string> {
    const env = { ...process.env, GIT_TERMINAL_PROMPT: '0' };
    const r = await runOk('git', ['-C', this.dir, ...args], { env, timeoutMs });
    return r.stdout;
  }

  /** Tags on the remote (what other deployments see), falling back to local tags when it is unreachable. */
  async remoteTags(): Promise<string[]> {
    const out = await this.git(['ls-remote', '--tags', '--refs', this.remote]);
    return out
      .split('\n')
      .map((l) => l.split('\t')[1])
      .filter((ref): ref is string => !!ref && ref.startsWith('refs/tags/'))
      .map((ref) => ref.slice('refs/tags/'.length));
  }
}
