/** Requests and results of verifying who sends a message. */
import type { Statement, VerifiedSender } from '../../domain/identity';

export interface VerifySenderRequest {
  environment: string;
  /** What the message says; the proof adds its gate, expiry and nonce to make the signed statement. */
  message: Omit<Statement, 'gate' | 'expires' | 'nonce'>;
  /** The `proof` as it arrived (checked here). */
  proof?: unknown;
}

export type SenderCheck = { ok: true; sender: VerifiedSender } | { ok: false; reason: string };
