/**
 * Real credentials for the verified-approval tests: SSH keys made by
 * ssh-keygen with an allowed_signers file (as a team keeps one for signed
 * commits), and a local OIDC issuer (a key pair, its JWKS file, tokens signed
 * with jose) standing in for the team's identity provider.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import { SSH_NAMESPACE } from '../../src/domain/identity';

export interface SshPeople {
  dir: string;
  allowedSigners: string;
  /** Private key file of a person. */
  key(name: string): string;
}

/** A key per name; `allowed` (default: all) are listed in allowed_signers under their name. */
export function sshPeople(names: string[], allowed = names): SshPeople {
  const dir = mkdtempSync(join(tmpdir(), 'ssh-people-'));
  const lines: string[] = [];
  for (const name of names) {
    const file = join(dir, name);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', file]);
    if (allowed.includes(name))
      lines.push(`${name} namespaces="${SSH_NAMESPACE}" ${readFileSync(`${file}.pub`, 'utf8').trim()}`);
  }
  const allowedSigners = join(dir, 'allowed_signers');
  writeFileSync(allowedSigners, lines.join('\n') + '\n');
  return { dir, allowedSigners, key: (name) => join(dir, name) };
}

export interface LocalIssuer {
  issuer: string;
  audience: string;
  jwksFile: string;
  /** A token file for the claims (iss, aud, iat, exp filled in unless given). */
  tokenFile(claims: JWTPayload, opts?: { expiresIn?: string; issuedAt?: number }): Promise<string>;
}

export async function localIssuer(
  issuer = 'https://id.example.test',
  audience = 'deploy-pipelines',
): Promise<LocalIssuer> {
  const dir = mkdtempSync(join(tmpdir(), 'oidc-'));
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  const jwksFile = join(dir, 'jwks.json');
  writeFileSync(jwksFile, JSON.stringify({ keys: [jwk] }));
  let n = 0;
  return {
    issuer,
    audience,
    jwksFile,
    async tokenFile(claims, opts = {}) {
      const token = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setIssuer(claims.iss ?? issuer)
        .setAudience((claims.aud as string | undefined) ?? audience)
        .setIssuedAt(opts.issuedAt)
        .setExpirationTime(opts.expiresIn ?? '10m')
        .sign(privateKey);
      const file = join(dir, `token-${++n}`);
      writeFileSync(file, token);
      return file;
    },
  };
}
