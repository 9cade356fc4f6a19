/**
 * What deployctl attaches to prove who sends a message: an SSH signature made
 * with the person's key (a private key file, or its .pub with the key in
 * ssh-agent) or an OIDC ID token from the team's identity provider. The
 * statement is built by the same function the worker checks it with.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Option } from 'commander';
import {
  DEFAULT_PROOF_LIFETIME_MS,
  NO_GATE,
  requestNote,
  SSH_NAMESPACE,
  statementText,
  type Proof,
  type RequestKind,
  type Statement,
} from '../domain/identity';
import { run } from '../activities/clients/process';
import { ExitCode } from './exit-codes';
import { CliError } from './session';

export interface ProofOptions {
  sshKey?: string;
  oidcTokenFile?: string;
}

/** The --ssh-key option: an SSH signature proves who sends the message. */
export function sshKeyOption(): Option {
  return new Option(
    '--ssh-key <path>',
    'sign with this SSH key: a private key, or its .pub when the key is in ssh-agent (default: $DEPLOYCTL_SSH_KEY)',
  ).conflicts('oidcTokenFile');
}

/** The --oidc-token-file option: an ID token from the team's identity provider proves who sends it. */
export function oidcTokenOption(): Option {
  return new Option(
    '--oidc-token-file <path>',
    "send this file's OIDC ID token as proof of who you are (default: $DEPLOYCTL_OIDC_TOKEN_FILE)",
  );
}

/** The options as given, else from the environment; an explicit one wins over the other's variable. */
export function proofOptions(o: Record<string, unknown>, env: NodeJS.ProcessEnv): ProofOptions {
  const sshKey = o.sshKey as string | undefined;
  const oidcTokenFile = o.oidcTokenFile as string | undefined;
  if (sshKey) return { sshKey };
  if (oidcTokenFile) return { oidcTokenFile };
  if (env.DEPLOYCTL_SSH_KEY) return { sshKey: env.DEPLOYCTL_SSH_KEY };
  if (env.DEPLOYCTL_OIDC_TOKEN_FILE) return { oidcTokenFile: env.DEPLOYCTL_OIDC_TOKEN_FILE };
  return {};
}

/** The proof for a message, or undefined when no key or token is given (the worker decides whether one is needed). */
export async function makeProof(
  o: ProofOptions,
  message: Omit<Statement, 'expires' | 'nonce'>,
  now = Date.now(),
): Promise<Proof | undefined> {
  if (!o.sshKey && !o.oidcTokenFile) return undefined;
  const expires = new Date(now + DEFAULT_PROOF_LIFETIME_MS).toISOString();
  const nonce = randomBytes(18).toString('base64url');
  const statement: Statement = { ...message, expires, nonce };
  if (o.sshKey) {
    const r = await run('ssh-keygen', ['-Y', 'sign', '-q', '-f', o.sshKey, '-n', SSH_NAMESPACE], {
      input: statementText(statement),
      timeoutMs: 60_000,
    });
    if (r.code !== 0 || !r.stdout.includes('BEGIN SSH SIGNATURE'))
      throw new CliError(
        `could not sign with ${o.sshKey}: ${(r.stderr || r.stdout).trim().split('\n').at(-1) ?? `ssh-keygen exited with ${r.code}`}`,
        ExitCode.BadInput,
      );
    return { type: 'ssh', gate: message.gate, expires, nonce, signature: r.stdout };
  }
  let token: string;
  try {
    token = (await readFile(o.oidcTokenFile!, 'utf8')).trim();
  } catch (err) {
    throw new CliError(`could not read the ID token: ${(err as Error).message}`, ExitCode.BadInput);
  }
  return { type: 'oidc', gate: message.gate, expires, nonce, token };
}

/**
 * Proof that the requester asks for this deployment, rollback or release (none
 * without --ssh-key / --oidc-token-file): the statement names the workflow id,
 * the kind and what is asked (requestNote of the checked input), as the
 * worker rebuilds it.
 */
export function requestProofFor(
  kind: RequestKind,
  workflowId: string,
  valid: Parameters<typeof requestNote>[1] & { requestedBy?: string },
  o: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): Promise<Proof | undefined> {
  return makeProof(proofOptions(o, env), {
    workflowId,
    signal: kind,
    by: valid.requestedBy ?? 'unknown',
    gate: NO_GATE,
    note: requestNote(kind, valid),
  });
}
