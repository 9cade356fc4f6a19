/**
 * Who requested a deployment or a rollback. Where the environment verifies
 * senders and the requester may not approve their own deployment, the
 * requester must be known for sure, so an unverified request is refused
 * before anything happens; elsewhere the typed name is kept, marked as typed.
 */
import type { ApprovalPolicy, RequestKind, VerifyMode } from '../../domain/identity';
import { requestNote } from '../../domain/identity';
import { InputError } from '../../domain/input';
import type { SenderCheck, VerifySenderRequest } from '../contracts';

export interface RequestFacts {
  kind: RequestKind;
  environment: string;
  workflowId: string;
  policy: ApprovalPolicy;
  /** The checked input: what the request's statement says is computed from it. */
  input: {
    requestedBy?: string;
    requestProof?: unknown;
    environment?: string;
    version?: string;
    bump?: string;
    toVersion?: string;
    toRevision?: number;
  };
}

/** The requester as the plan records it; throws InputError when the environment needs a proof that does not hold. */
export async function verifiedRequester(
  f: RequestFacts,
  verify: (req: VerifySenderRequest) => Promise<SenderCheck>,
): Promise<{ requestedBy: string; requestedVia: VerifyMode }> {
  const typed = f.input.requestedBy ?? 'unknown';
  if (f.policy.verify === 'none') return { requestedBy: typed, requestedVia: 'none' };
  if (f.input.requestProof === undefined) {
    if (f.policy.allowSelfApproval) return { requestedBy: typed, requestedVia: 'none' };
    throw new InputError(
      `requestProof: ${f.environment} verifies who requests a ${f.kind} (approvers may not approve their own), ` +
        `so start it with deployctl ${f.kind}${f.policy.verify === 'ssh' ? ' --ssh-key <key>' : ' --oidc-token-file <token>'}`,
    );
  }
  const r = await verify({
    environment: f.environment,
    message: { workflowId: f.workflowId, signal: f.kind, by: typed, note: requestNote(f.kind, f.input) },
    proof: f.input.requestProof,
  });
  if (!r.ok) throw new InputError(`requestProof: ${r.reason}`);
  return { requestedBy: r.sender.identity, requestedVia: r.sender.via };
}
