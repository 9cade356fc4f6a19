/**
 * Verifies who sent a steering message or requested a deployment: one
 * verifier per mode (ssh.ts, oidc.ts), chosen by the environment's
 * `approvals.verify`, built once per environment. A proof that does not hold
 * is an answer (`ok: false` with the reason), never an error, so the workflow
 * records the message as ignored; only a verifier that cannot run (ssh-keygen
 * missing, the JWKS unreachable) throws, and is retried.
 */
import type { DeployConfig } from '../../domain/config';
import {
  checkProof,
  expiryProblem,
  statementText,
  type Proof,
  type Statement,
  type VerifiedSender,
  type VerifyMode,
} from '../../domain/identity';
import type { SenderCheck, VerifySenderRequest } from '../contracts';
import { oidcVerifier } from './oidc';
import { sshVerifier } from './ssh';

export type ProofCheck =
  | { ok: true; identity: string; groups: string[]; credential?: string; replayKey: string }
  | { ok: false; reason: string };

export interface ProofVerifier {
  verify(req: { statement: Statement; text: string; proof: Proof }): Promise<ProofCheck>;
}

type Approvals = DeployConfig['environments'][string]['approvals'];

function buildVerifier(approvals: Approvals, env: NodeJS.ProcessEnv): ProofVerifier | undefined {
  if (approvals.verify === 'ssh' && approvals.ssh) return sshVerifier(approvals.ssh, env);
  if (approvals.verify === 'oidc' && approvals.oidc) return oidcVerifier(approvals.oidc);
  return undefined;
}

export interface IdentityDeps {
  config: DeployConfig;
  env: NodeJS.ProcessEnv;
  now?: () => number;
}

export function identityActivities(deps: IdentityDeps) {
  const verifiers = new Map<string, ProofVerifier | undefined>();
  const verifierOf = (environment: string): { mode: VerifyMode; verifier?: ProofVerifier } => {
    const env = deps.config.environments[environment];
    if (!env) return { mode: 'none' };
    if (!verifiers.has(environment)) verifiers.set(environment, buildVerifier(env.approvals, deps.env));
    return { mode: env.approvals.verify, verifier: verifiers.get(environment) };
  };
  const now = deps.now ?? Date.now;

  /** Checks a proof for `environment`; `ok: false` says why it does not count. */
  async function verifyProof(req: VerifySenderRequest): Promise<SenderCheck> {
    const { mode, verifier } = verifierOf(req.environment);
    if (mode === 'none' || !verifier) return { ok: false, reason: `${req.environment} does not verify senders` };
    if (req.proof === undefined)
      return {
        ok: false,
        reason: `${req.environment} needs proof of who sends it (${mode}); send it with deployctl${mode === 'ssh' ? ' --ssh-key <key>' : ' --oidc-token-file <token>'}`,
      };
    const shape = checkProof(req.proof);
    if (!shape.ok) return { ok: false, reason: shape.reason };
    const proof = shape.value;
    if (proof.type !== mode)
      return { ok: false, reason: `the proof's type is ${proof.type}, but ${req.environment} verifies ${mode}` };
    const expired = expiryProblem(proof.expires, now());
    if (expired) return { ok: false, reason: expired };
    const statement: Statement = { ...req.message, gate: proof.gate, expires: proof.expires, nonce: proof.nonce };
    const r = await verifier.verify({ statement, text: statementText(statement), proof });
    if (!r.ok) return r;
    const sender: VerifiedSender = {
      identity: r.identity,
      via: mode,
      groups: r.groups,
      gate: proof.gate,
      replayKey: r.replayKey,
      ...(r.credential ? { credential: r.credential } : {}),
    };
    return { ok: true, sender };
  }

  /** The activity: a steering message's sender (approve, abort, pause, resume, promote); resolvePlan uses it for the requester. */
  return { verifySender: verifyProof };
}
