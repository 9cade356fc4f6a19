/**
 * Who steers a deployment (design §5): the environment's approval policy, the
 * statement a person signs, and who may approve. Pure: deployctl builds the
 * statement it signs with the same function the worker uses to check it, and
 * the workflows decide with the policy fixed in their plan.
 */

/** How an environment verifies the sender of a steering message. */
export type VerifyMode = 'none' | 'ssh' | 'oidc';

/** The environment's rules for people, as the plan carries them. */
export interface ApprovalPolicy {
  verify: VerifyMode;
  /** Identities (an SSH principal, the OIDC identity claim) or `group:<name>` (OIDC groups); empty: anyone verified. */
  approvers: string[];
  /** Distinct people a gate (and a database restore) needs. */
  required: number;
  /** Whether the person who requested a deployment may approve it. */
  allowSelfApproval: boolean;
  /** The longest a canary may stay paused before it aborts to stable; none: no limit. */
  maxPauseMs?: number;
}

/** Proof of who sent a message, as deployctl attaches it (`proof` in a signal, `requestProof` in an input). */
export interface Proof {
  type: 'ssh' | 'oidc';
  /** The gate the message answers (`status.waitingFor.gate`), `-` for none. */
  gate: string;
  /** ISO time after which the proof is refused. */
  expires: string;
  /** Random, once per message: a proof seen before in the same workflow is a replay. */
  nonce: string;
  /** `ssh-keygen -Y sign` output (armored SSHSIG). */
  signature?: string;
  /** An OIDC ID token (JWT). */
  token?: string;
}

/** A sender the worker checked: the identity the proof names, never the `by` a person typed. */
export interface VerifiedSender {
  identity: string;
  via: VerifyMode;
  groups: string[];
  /** The gate the proof was made for. */
  gate: string;
  /** What makes this proof unique; a second message with the same key is a replay. */
  replayKey: string;
  /** For the record: the SSH key's fingerprint, the token's issuer. */
  credential?: string;
}

/** The SSHSIG namespace (`ssh-keygen -n`): a signature made for anything else (git commits, files) never counts here. */
export const SSH_NAMESPACE = 'deploy-pipelines';
/** The `signal` of the statement that proves who requested a deployment or a rollback. */
export type RequestKind = 'deploy' | 'rollback' | 'release';
/** The longest a proof may be valid for, and the default lifetime deployctl gives one. */
export const MAX_PROOF_LIFETIME_MS = 15 * 60_000;
export const DEFAULT_PROOF_LIFETIME_MS = 5 * 60_000;
/** The `gate` of a message that answers no gate (abort, pause, resume, promote, a request). */
export const NO_GATE = '-';

/** What a person signs: everything the message changes, bound to one workflow and one gate, valid until `expires`. */
export interface Statement {
  workflowId: string;
  signal: string;
  by: string;
  gate: string;
  expires: string;
  nonce: string;
  note?: string;
  reason?: string;
  full?: boolean;
}

/** The exact bytes signed: one JSON object with a fixed key order, so deployctl and the worker agree byte for byte. */
export function statementText(s: Statement): string {
  return JSON.stringify({
    v: 1,
    workflowId: s.workflowId,
    signal: s.signal,
    by: s.by,
    gate: s.gate,
    expires: s.expires,
    nonce: s.nonce,
    note: s.note ?? null,
    reason: s.reason ?? null,
    full: s.full ?? null,
  });
}

const PROOF_TEXT_MAX = 16_384;
const NONCE_RE = /^[A-Za-z0-9_-]{16,128}$/;
const GATE_RE = /^[a-z0-9][a-z0-9.%-]{0,63}$|^-$/;

/** Checks the shape of a proof from outside; the reason names the field. Says nothing about whether it is genuine. */
export function checkProof(v: unknown): { ok: true; value: Proof } | { ok: false; reason: string } {
  const fail = (reason: string) => ({ ok: false as const, reason: `proof: ${reason}` });
  if (!v || typeof v !== 'object' || Array.isArray(v)) return fail('must be an object');
  const p = v as Record<string, unknown>;
  const known = ['type', 'gate', 'expires', 'nonce', 'signature', 'token'];
  const extra = Object.keys(p).filter((k) => !known.includes(k));
  if (extra.length) return fail(`unknown field(s) ${extra.join(', ')}`);
  if (p.type !== 'ssh' && p.type !== 'oidc') return fail('"type" must be ssh or oidc');
  if (typeof p.gate !== 'string' || !GATE_RE.test(p.gate)) return fail('"gate" must name a gate (or "-")');
  if (typeof p.expires !== 'string' || Number.isNaN(Date.parse(p.expires)))
    return fail('"expires" must be an ISO time');
  if (typeof p.nonce !== 'string' || !NONCE_RE.test(p.nonce)) return fail('"nonce" must be 16-128 URL-safe characters');
  const secretField = p.type === 'ssh' ? 'signature' : 'token';
  const text = p[secretField];
  if (typeof text !== 'string' || text.length === 0 || text.length > PROOF_TEXT_MAX)
    return fail(`"${secretField}" is required for ${p.type} (at most ${PROOF_TEXT_MAX} characters)`);
  const other = p.type === 'ssh' ? 'token' : 'signature';
  if (p[other] !== undefined) return fail(`"${other}" does not belong to a ${p.type} proof`);
  return {
    ok: true,
    value: {
      type: p.type,
      gate: p.gate,
      expires: p.expires,
      nonce: p.nonce,
      [secretField]: text,
    },
  };
}

/** Why a proof's lifetime is refused at `nowMs`, or undefined when it is current. */
export function expiryProblem(expires: string, nowMs: number): string | undefined {
  const at = Date.parse(expires);
  if (Number.isNaN(at)) return 'the proof has no valid expiry';
  if (at <= nowMs) return `the proof expired at ${expires}; sign again`;
  if (at - nowMs > MAX_PROOF_LIFETIME_MS)
    return `the proof is valid for more than ${MAX_PROOF_LIFETIME_MS / 60_000} minutes; sign one that expires sooner`;
  return undefined;
}

/** Whether a sender may approve, abort, pause, resume or promote under the policy. */
export function mayApprove(policy: ApprovalPolicy, identity: string, groups: readonly string[] = []): boolean {
  if (policy.approvers.length === 0) return true;
  return policy.approvers.some((a) => (a.startsWith('group:') ? groups.includes(a.slice(6)) : a === identity));
}

/** The policy of a plan; plans recorded before verified approvals carry only approvers and requiredApprovals. */
export function policyOf(plan: {
  approvals?: ApprovalPolicy;
  approvers?: string[];
  requiredApprovals?: number;
}): ApprovalPolicy {
  if (plan.approvals) return plan.approvals;
  return {
    verify: 'none',
    approvers: plan.approvers ?? [],
    required: plan.requiredApprovals ?? 1,
    // Those plans had no such rule; replaying them must decide as they did.
    allowSelfApproval: true,
  };
}

/** One line for the status: how senders are verified here and who counts. */
export function describePolicy(environment: string, policy: ApprovalPolicy): string {
  const who = policy.approvers.length ? policy.approvers.join(', ') : 'anyone';
  const how =
    policy.verify === 'none'
      ? 'senders are NOT verified (verify: none): the name given with --by is taken as it is'
      : `senders are verified by ${policy.verify === 'ssh' ? 'SSH signature' : 'OIDC ID token'}`;
  const self = policy.allowSelfApproval ? '' : '; the requester cannot approve';
  return `${environment}: ${how}; approvers: ${who}; ${policy.required} distinct approval(s) per gate${self}`;
}

/** The flags deployctl needs to prove who sends a message under this policy. */
export function proofFlags(policy: ApprovalPolicy): string {
  if (policy.verify === 'ssh') return ' --ssh-key <your private key or .pub with an agent>';
  if (policy.verify === 'oidc') return ' --oidc-token-file <your ID token>';
  return '';
}

/** What a request's statement says (its `note`), from the checked input: deployctl signs it, resolvePlan checks it. */
export function requestNote(
  kind: RequestKind,
  input: {
    environment?: string;
    version?: string;
    bump?: string;
    toVersion?: string;
    toRevision?: number;
    through?: string[];
  },
): string {
  if (kind === 'release')
    return `release ${input.version ?? '?'} through ${input.through?.join(', ') ?? 'the configured stages'}`;
  const env = input.environment ?? '(default environment)';
  if (kind === 'deploy') return `deploy ${input.version ?? input.bump ?? '?'} to ${env}`;
  const to =
    input.toVersion ?? (input.toRevision !== undefined ? `revision ${input.toRevision}` : 'the previous release');
  return `roll ${env} back to ${to}`;
}
