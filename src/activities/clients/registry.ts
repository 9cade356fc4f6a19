/**
 * The container registry's HTTP API (distribution v2): manifest digests and
 * image labels, with basic or bearer-token auth. Used to verify pushes and to
 * decide, after a retry or a crash, which images are already there.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import * as path from 'node:path';

const MANIFEST_TYPES = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.index.v1+json',
].join(', ');

export interface RegistryAuth {
  username: string;
  password: string;
}

export class RegistryError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'RegistryError';
  }
}

/**
 * Credentials for a registry host: the env vars the config names, else the
 * docker config file ($DOCKER_CONFIG/config.json or ~/.docker/config.json).
 */
export function registryCredentials(
  host: string,
  env: NodeJS.ProcessEnv,
  usernameEnv?: string,
  passwordEnv?: string,
): RegistryAuth | undefined {
  const user = usernameEnv ? env[usernameEnv] : undefined;
  const pass = passwordEnv ? env[passwordEnv] : undefined;
  if (user && pass) return { username: user, password: pass };
  try {
    const file = path.join(env.DOCKER_CONFIG ?? path.join(homedir(), '.docker'), 'config.json');
    const cfg = JSON.parse(readFileSync(file, 'utf8')) as {
      auths?: Record<string, { auth?: string; username?: string; password?: string }>;
    };
    const registryHost = host.split('/')[0];
    const entry = cfg.auths?.[registryHost] ?? cfg.auths?.[`https://${registryHost}`];
    if (entry?.auth) {
      const [username, ...rest] = Buffer.from(entry.auth, 'base64').toString('utf8').split(':');
      return { username, password: rest.join(':') };
    }
    if (entry?.username && entry.password) return { username: entry.username, password: entry.password };
  } catch {
    // No docker config: anonymous access.
  }
  return undefined;
}

export class RegistryClient {
  private token?: string;
  readonly base: string;
  /** Repository path prefix inside the registry (host/path form of the registry setting). */
  readonly prefix: string;

  constructor(
    readonly host: string,
    readonly insecure: boolean,
    private readonly auth?: RegistryAuth,
    private readonly timeoutMs = 15_000,
  ) {
    const [h, ...p] = host.split('/');
    this.base = `${insecure ? 'http' : 'https'}://${h}`;
    this.prefix = p.join('/');
  }

  private repo(image: string): string {
    return this.prefix ? `${this.prefix}/${image}` : image;
  }

  private async request(url: string, init: RequestInit, retried = false): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.token) headers.set('Authorization', `Bearer ${this.token}`);
    else if (this.auth)
      headers.set(
        'Authorization',
        `Basic ${Buffer.from(`${this.auth.username}:${this.auth.password}`).toString('base64')}`,
      );
    let res: Response;
    try {
      res = await fetch(url, { ...init, headers, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      throw new RegistryError(`registry ${this.base} unreachable: ${(err as Error).message}`);
    }
    if (res.status === 401 && !retried) {
      const challenge = res.headers.get('www-authenticate') ?? '';
      if (/^Bearer /i.test(challenge)) {
        await this.fetchToken(challenge);
        return this.request(url, init, true);
      }
    }
    return res;
  }

  /** The bearer-token dance of Docker Hub, GHCR, ECR and friends. */
  private async fetchToken(challenge: string): Promise<void> {
    const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (!params.realm) throw new RegistryError(`registry ${this.base} sent a bearer challenge without a realm`);
    const u = new URL(params.realm);
    if (params.service) u.searchParams.set('service', params.service);
    if (params.scope) u.searchParams.set('scope', params.scope);
    const headers: Record<string, string> = {};
    if (this.auth)
      headers.Authorization = `Basic ${Buffer.from(`${this.auth.username}:${this.auth.password}`).toString('base64')}`;
    const r = await fetch(u, { headers, signal: AbortSignal.timeout(this.timeoutMs) });
    if (!r.ok)
      throw new RegistryError(
        `registry token request failed with ${r.status}: check the registry credentials`,
        r.status,
      );
    const j = (await r.json()) as { token?: string; access_token?: string };
    this.token = j.token ?? j.access_token;
  }

  /** The manifest digest of image:tag, or undefined when the tag does not exist. */
  async digest(image: string, tag: string): Promise<string | undefined> {
    const res = await this.request(`${this.base}/v2/${this.repo(image)}/manifests/${encodeURIComponent(tag)}`, {
      method: 'HEAD',
      headers: { Accept: MANIFEST_TYPES },
    });
    if (res.status === 404) return undefined;
    if (!res.ok) throw new RegistryError(`registry answered ${res.status} for ${image}:${tag}`, res.status);
    const d = res.headers.get('docker-content-digest');
    if (!d) throw new RegistryError(`registry gave no digest for ${image}:${tag}`);
    return d;
  }

  /** The labels of the image config behind image:tag (how we recognise our own builds). */
  async labels(image: string, tag: string): Promise<Record<string, string>> {
    const res = await this.request(`${this.base}/v2/${this.repo(image)}/manifests/${encodeURIComponent(tag)}`, {
      headers: { Accept: MANIFEST_TYPES },
    });
    if (!res.ok)
      throw new RegistryError(`registry answered ${res.status} for the manifest of ${image}:${tag}`, res.status);
    const manifest = (await res.json()) as { config?: { digest: string } };
    if (!manifest.config) return {};
    const blob = await this.request(`${this.base}/v2/${this.repo(image)}/blobs/${manifest.config.digest}`, {});
    if (!blob.ok)
      throw new RegistryError(`registry answered ${blob.status} for the config of ${image}:${tag}`, blob.status);
    const cfg = (await blob.json()) as { config?: { Labels?: Record<string, string> | null } };
    return cfg.config?.Labels ?? {};
  }

  async tags(image: string): Promise<string[]> {
    const res = await this.request(`${this.base}/v2/${this.repo(image)}/tags/list`, {});
    if (res.status === 404) return [];
    if (!res.ok) throw new RegistryError(`registry answered ${res.status} listing tags of ${image}`, res.status);
    return ((await res.json()) as { tags?: string[] | null }).tags ?? [];
  }
}
