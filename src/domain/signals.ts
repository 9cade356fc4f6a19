/**
 * Payloads of the signals people send (design §4). Checked in the workflow's
 * handler: a bad payload is recorded as ignored, never thrown, so a typo in
 * the Temporal UI cannot wedge a deployment.
 */

export interface ApprovePayload {
  by: string;
  note?: string;
}
export interface AbortPayload {
  by: string;
  reason: string;
}
export interface PausePayload {
  by: string;
}
export interface ResumePayload {
  by: string;
}
export interface PromotePayload {
  by: string;
  full?: boolean;
}

export type SignalName = 'approve' | 'abort' | 'pause' | 'resume' | 'promote';

/** What stops and restarts an environment's line (workflows/freeze.ts): the freeze's input and the unfreeze signal. */
export interface FreezePayload {
  by: string;
  /** Why: required, it is what people see while their deployments wait. */
  reason: string;
}
export type FreezeMessage = 'freeze' | 'unfreeze';

const MAX_TEXT = 1000;
const BY_RE = /^[\p{L}\p{N}._@+\- ]{1,128}$/u;

export type Checked<T> = { ok: true; value: T } | { ok: false; reason: string; by: string };

function text(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** The `by` of a payload when readable, for recording who sent a refused signal. */
function byOf(payload: unknown): string {
  const by = payload && typeof payload === 'object' ? text((payload as Record<string, unknown>).by) : undefined;
  return by ? by.slice(0, 128) : '(unknown)';
}

export function checkSignal<T>(name: SignalName | FreezeMessage, payload: unknown): Checked<T> {
  const fail = (reason: string): Checked<T> => ({ ok: false, reason, by: byOf(payload) });
  if (!payload || typeof payload !== 'object' || Array.isArray(payload)) {
    return fail(`${name} needs a JSON object such as {"by":"alice"}`);
  }
  const p = payload as Record<string, unknown>;
  const by = text(p.by);
  if (!by || !BY_RE.test(by))
    return fail(`${name} needs "by": the name of the person (letters, digits, . _ @ + -, at most 128)`);
  const out: Record<string, unknown> = { by };
  for (const field of ['note', 'reason'] as const) {
    if (p[field] === undefined) continue;
    const v = text(p[field]);
    if (v === undefined || v.length > MAX_TEXT)
      return fail(`${name}: "${field}" must be text of at most ${MAX_TEXT} characters`);
    out[field] = v;
  }
  if (name === 'abort') {
    out.reason ??= 'no reason given';
  }
  if ((name === 'freeze' || name === 'unfreeze') && !(typeof out.reason === 'string' && out.reason.trim()))
    return fail(`${name} needs "reason": why (people read it while their deployments wait)`);
  if (name === 'promote' && p.full !== undefined) {
    if (typeof p.full !== 'boolean') return fail('promote: "full" must be true or false');
    out.full = p.full;
  }
  return { ok: true, value: out as T };
}
