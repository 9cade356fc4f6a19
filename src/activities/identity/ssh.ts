/**
 * SSH signatures (ssh-keygen -Y verify), checked against an allowed_signers
 * file: the format git uses for signed commits, so a team reuses the keys and
 * the file it already keeps. The principal is the `by` the sender signed; the
 * file decides whether that key may speak for it (and until when).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SSH_NAMESPACE } from '../../domain/identity';
import { childEnv, run } from '../clients/process';
import type { ProofCheck, ProofVerifier } from './verifier';

export interface SshSettings {
  allowedSigners: string;
}

/** ssh-keygen's one line on success, e.g. `Good "deploy-pipelines" signature for alice with ED25519 key SHA256:...`. */
const GOOD_RE = /^Good "[^"]*" signature for (.+) with (\S+) key (\S+)\s*$/m;

export function sshVerifier(settings: SshSettings, env: NodeJS.ProcessEnv): ProofVerifier {
  return {
    async verify({ statement, text, proof }): Promise<ProofCheck> {
      const dir = await mkdtemp(join(tmpdir(), 'deploy-sig-'));
      try {
        const sigFile = join(dir, 'message.sig');
        await writeFile(sigFile, proof.signature ?? '', { mode: 0o600 });
        const r = await run(
          'ssh-keygen',
          ['-Y', 'verify', '-f', settings.allowedSigners, '-I', statement.by, '-n', SSH_NAMESPACE, '-s', sigFile],
          { input: text, timeoutMs: 10_000, env: childEnv(env), maxOutput: 4096 },
        );
        const good = r.code === 0 ? GOOD_RE.exec(r.stdout) : null;
        if (!good) {
          const said = (r.stderr || r.stdout).trim().split('\n').at(-1) ?? '';
          return {
            ok: false,
            reason: `the SSH signature is not one of ${statement.by}'s keys in the allowed signers for this message (${said.slice(0, 200)})`,
          };
        }
        return {
          ok: true,
          identity: statement.by,
          groups: [],
          credential: `${good[2]} ${good[3]}`,
          replayKey: `ssh:${proof.nonce}`,
        };
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
