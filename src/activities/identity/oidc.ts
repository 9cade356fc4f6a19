/**
 * OIDC ID tokens from the team's identity provider, checked with jose against
 * the issuer's keys (a JWKS file or its jwks_uri): issuer, audience, expiry,
 * age, and the claim that names the person. With requireNonce the token's
 * nonce claim must be the hash of the signed statement, which binds the token
 * to one message; without it a token is a bearer credential for its lifetime,
 * counted once per workflow, gate and signal (docs/operations.md).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import type { ProofCheck, ProofVerifier } from './verifier';

export interface OidcSettings {
  issuer: string;
  audience: string;
  jwksFile?: string;
  jwksUrl?: string;
  identityClaim: string;
  groupsClaim?: string;
  maxTokenAge: number;
  requireNonce: boolean;
}

/** Asymmetric algorithms only: a JWKS never holds a shared secret, and "none" is never accepted. */
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

const sha256url = (s: string) => createHash('sha256').update(s).digest('base64url');

/** The statement hash a token's nonce claim carries when requireNonce is on (deployctl prints it). */
export function statementNonce(text: string): string {
  return sha256url(text);
}

export function oidcVerifier(settings: OidcSettings): ProofVerifier {
  // The remote key set caches and refreshes keys itself; a file is read on each check so a rotation needs no restart.
  const remote = settings.jwksUrl ? createRemoteJWKSet(new URL(settings.jwksUrl)) : undefined;
  const keys = async () =>
    remote ?? createLocalJWKSet(JSON.parse(await readFile(settings.jwksFile!, 'utf8')) as JSONWebKeySet);
  return {
    async verify({ statement, text, proof }): Promise<ProofCheck> {
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(proof.token ?? '', await keys(), {
          issuer: settings.issuer,
          audience: settings.audience,
          algorithms: ALGORITHMS,
          maxTokenAge: `${Math.floor(settings.maxTokenAge / 1000)}s`,
          requiredClaims: ['exp', 'iat', settings.identityClaim],
        }));
      } catch (err) {
        if (err instanceof errors.JOSEError) return { ok: false, reason: `the ID token was refused: ${oneLine(err)}` };
        throw err;
      }
      const identity = payload[settings.identityClaim];
      if (typeof identity !== 'string' || identity.length === 0 || identity.length > 128)
        return { ok: false, reason: `the ID token's "${settings.identityClaim}" claim is not a name` };
      if (settings.identityClaim === 'email' && payload.email_verified === false)
        return { ok: false, reason: `the ID token's email ${identity} is not verified by the issuer` };
      if (settings.requireNonce && payload.nonce !== statementNonce(text))
        return {
          ok: false,
          reason: 'the ID token was not issued for this message (its nonce is not the hash of the statement)',
        };
      const rawGroups = settings.groupsClaim ? payload[settings.groupsClaim] : undefined;
      const groups = Array.isArray(rawGroups) ? rawGroups.filter((g): g is string => typeof g === 'string') : [];
      const tokenKey = sha256url(proof.token ?? '');
      return {
        ok: true,
        identity,
        groups,
        credential: `issuer ${settings.issuer}`,
        replayKey: settings.requireNonce
          ? `oidc:${proof.nonce}`
          : `oidc:${tokenKey}:${statement.signal}:${statement.gate}`,
      };
    },
  };
}

function oneLine(err: Error): string {
  if (err instanceof errors.JWTExpired) return 'it has expired; get a fresh token';
  if (err instanceof errors.JWTClaimValidationFailed) return `${err.claim}: ${err.message}`;
  if (err instanceof errors.JWKSNoMatchingKey) return 'it is not signed by a key of the configured issuer';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'its signature does not verify';
  return err.message.split('\n')[0].slice(0, 200);
}
