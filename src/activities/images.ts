/**
 * Runbook step 2 ("Build Docker Images") with dockerode: each service's
 * context streamed as a tar, built with the VERSION build arg, tagged
 * `<registry>/<image>:<version>`, pushed, and verified by reading the manifest
 * digest back from the registry. Services build in parallel under a limit.
 *
 * Resumable and idempotent: an image whose tag is already in the registry and
 * whose `org.opencontainers.image.revision` label is the release commit is
 * ours (from an earlier attempt or run) and is not rebuilt; a tag that holds
 * something else is an ImageTagConflict unless the plan allows overwriting.
 */
import { ApplicationFailure } from '@temporalio/common';
import type Docker from 'dockerode';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import ignore from '@balena/dockerignore';
import { pack } from 'tar-fs';
import type { PlannedService } from '../domain/plan';
import { assertCommit } from './clients/git';
import { checkedVersion, invalidInput, fail } from './failures';
import { RegistryClient, RegistryError, type RegistryAuth } from './clients/registry';
import type { BuildImagesRequest, ImagesProgress, ImagesResult } from './contracts';

/** A registry repository path, as the config schema allows it. */
const IMAGE_NAME_RE = /^[a-z0-9]+([._/-][a-z0-9]+)*$/;

export const REVISION_LABEL = 'org.opencontainers.image.revision';
export const VERSION_LABEL = 'org.opencontainers.image.version';
export const BUILT_BY_LABEL = 'dev.deploy-pipelines.workflow-id';

export interface ImagesDeps {
  docker: Docker;
  registry: RegistryClient;
  registryHost: string;
  registryAuth?: RegistryAuth;
  /** Folder of the release source at a commit. */
  sourceAt(commit: string): Promise<string>;
  concurrency: number;
  heartbeat(details: ImagesProgress): void;
  /** Details of the previous attempt's last heartbeat, if any. */
  previous(): ImagesProgress | undefined;
  cancelled?: AbortSignal;
  /** The worker's redactor (deps.ts): a build log or a registry error may echo a secret. */
  redact?: (text: string) => string;
}

interface BuildEvent {
  stream?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: { ID?: string; Digest?: string };
  status?: string;
}

function tail(lines: string[], n = 15): string {
  return lines.slice(-n).join('\n');
}

/** Streams a build context as a tar, honouring .dockerignore (the Dockerfile itself always goes). */
async function contextTar(dir: string, dockerfile: string): Promise<Readable> {
  const patterns = await readFile(path.join(dir, '.dockerignore'), 'utf8').then(
    (t) => t.split('\n'),
    () => [] as string[],
  );
  const ig = ignore().add(patterns);
  return pack(dir, {
    ignore: (name: string) => {
      const rel = path.relative(dir, name);
      if (!rel || rel === dockerfile || rel === '.dockerignore') return false;
      return ig.ignores(rel);
    },
  }) as unknown as Readable;
}

function follow(
  docker: Docker,
  stream: NodeJS.ReadableStream,
  onEvent: (e: BuildEvent) => void,
): Promise<BuildEvent[]> {
  return new Promise((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (err: Error | null, res: BuildEvent[]) => (err ? reject(err) : resolve(res)),
      onEvent,
    );
  });
}

/** Runs `fn` over items with at most `limit` running at once. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  const errors: unknown[] = [];
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) {
      try {
        await fn(item);
      } catch (err) {
        errors.push(err);
        queue.length = 0; // stop starting new builds; running ones finish
      }
    }
  });
  await Promise.all(workers);
  if (errors.length) throw errors.find((e) => e instanceof ApplicationFailure && e.nonRetryable) ?? errors[0];
}

/** The registry refused the worker: retrying cannot help, a person must fix the credentials or the permission. */
function accessDenied(message: string): ApplicationFailure {
  return fail.RegistryAccessDenied(
    `${message}: the registry refused the worker's credentials; check the registry user and password variables (registry.usernameEnv / registry.passwordEnv) and its push permission on this repository`,
  );
}

export function imagesActivities(deps: ImagesDeps) {
  const redact = deps.redact ?? ((text: string) => text);
  async function registryState(
    image: string,
    version: string,
    commit: string,
  ): Promise<{ digest: string; ours: boolean } | undefined> {
    const digest = await deps.registry.digest(image, version);
    if (!digest) return undefined;
    const labels = await deps.registry.labels(image, version);
    return { digest, ours: labels[REVISION_LABEL] === commit };
  }

  async function buildOne(
    svc: PlannedService,
    req: BuildImagesRequest,
    source: string,
    progress: ImagesProgress,
    report: () => void,
  ): Promise<string> {
    const tagRef = `${deps.registryHost}/${svc.image}:${req.version}`;
    const contextDir = path.resolve(source, svc.context);
    if (!contextDir.startsWith(source + path.sep)) {
      throw fail.InvalidInput(`service ${svc.name}: build context ${svc.context} is outside the repository`);
    }
    // An image of this tag built from the release commit by an earlier attempt needs only a push.
    const local = await deps.docker
      .getImage(tagRef)
      .inspect()
      .catch(() => undefined);
    if (local?.Config?.Labels?.[REVISION_LABEL] !== req.commit) {
      progress.services[svc.name] = { state: 'building' };
      report();
      const tar = await contextTar(contextDir, svc.dockerfile);
      const build = await deps.docker.buildImage(tar, {
        t: tagRef,
        dockerfile: svc.dockerfile,
        buildargs: { VERSION: req.version },
        labels: { [REVISION_LABEL]: req.commit, [VERSION_LABEL]: req.version, [BUILT_BY_LABEL]: req.workflowId },
        forcerm: true,
        pull: false,
        abortSignal: deps.cancelled,
      } as Docker.ImageBuildOptions);
      const log: string[] = [];
      let step = '';
      let failure: string | undefined;
      await follow(deps.docker, build, (e) => {
        if (e.stream) {
          for (const line of e.stream.split('\n').filter((l) => l.trim())) {
            log.push(line);
            if (/^Step \d+\/\d+ :/.test(line)) step = line;
          }
        }
        if (e.error || e.errorDetail) failure = e.errorDetail?.message ?? e.error;
      });
      if (failure) {
        throw fail.BuildFailed(redact(`build of ${svc.name} failed at "${step || 'start'}": ${failure}`), {
          service: svc.name,
          step: redact(step),
          log: redact(tail(log)),
        });
      }
    }
    progress.services[svc.name] = { state: 'pushing' };
    report();
    const push = await deps.docker.getImage(tagRef).push({
      authconfig: deps.registryAuth
        ? { ...deps.registryAuth, serveraddress: deps.registryHost.split('/')[0] }
        : { serveraddress: deps.registryHost.split('/')[0] },
    });
    let pushError: string | undefined;
    let digest: string | undefined;
    await follow(deps.docker, push, (e) => {
      if (e.error || e.errorDetail) pushError = e.errorDetail?.message ?? e.error;
      if (e.aux?.Digest) digest = e.aux.Digest;
    });
    // Registry outages surface here: retryable, the next attempt pushes again without rebuilding.
    if (pushError && /\b(denied|unauthorized|forbidden)\b/i.test(pushError))
      throw accessDenied(redact(`push of ${tagRef} failed: ${pushError}`));
    if (pushError) throw new Error(redact(`push of ${tagRef} failed: ${pushError}`));
    const remote = await deps.registry.digest(svc.image, req.version);
    if (!remote || (digest && remote !== digest))
      throw new Error(
        `push of ${tagRef} not visible in the registry (got ${remote ?? 'nothing'}, pushed ${digest ?? 'unknown'})`,
      );
    return remote;
  }

  return {
    async buildImages(req: BuildImagesRequest): Promise<ImagesResult> {
      const version = checkedVersion(req.version);
      const commit = assertCommit(req.commit);
      // Defence in depth: the plan's names come from the validated config, but nothing
      // reaches the registry or Docker unless it is a plain repository name.
      for (const s of req.services) {
        if (!IMAGE_NAME_RE.test(s.image) || s.image.length > 255)
          throw invalidInput(
            `service ${JSON.stringify(s.name)}: invalid image name ${JSON.stringify(s.image)}: expected a repository name such as ai-saas-auth-service`,
          );
        if (!/^[A-Za-z0-9._/-]{1,255}$/.test(s.dockerfile) || s.dockerfile.split('/').includes('..'))
          throw invalidInput(`service ${JSON.stringify(s.name)}: invalid dockerfile ${JSON.stringify(s.dockerfile)}`);
      }
      const request = { ...req, version, commit };
      const previous = deps.previous();
      const progress: ImagesProgress = {
        services: Object.fromEntries(
          req.services.map((s) => [s.name, previous?.services[s.name] ?? { state: 'pending' }]),
        ),
      };
      const report = () => deps.heartbeat(progress);
      const result: ImagesResult = {};
      const source = await deps.sourceAt(commit);
      report();
      await pool(req.services, deps.concurrency, async (svc) => {
        const tagRef = `${deps.registryHost}/${svc.image}:${version}`;
        let state: Awaited<ReturnType<typeof registryState>>;
        try {
          state = await registryState(svc.image, version, commit);
        } catch (err) {
          if (err instanceof RegistryError && (err.status === 401 || err.status === 403))
            throw accessDenied(`${svc.name}: ${err.message}`);
          if (err instanceof RegistryError) throw new Error(`${svc.name}: ${err.message}`, { cause: err });
          throw err;
        }
        const before = progress.services[svc.name];
        const pushedByUs = before && 'digest' in before && state?.digest === before.digest;
        if (state && (state.ours || pushedByUs)) {
          progress.services[svc.name] = { state: 'reused', digest: state.digest };
          result[svc.name] = {
            service: svc.name,
            reference: `${deps.registryHost}/${svc.image}@${state.digest}`,
            tagReference: tagRef,
            digest: state.digest,
            reused: true,
          };
          report();
          return;
        }
        if (state && !request.allowOverwrite) {
          throw fail.ImageTagConflict(
            `${tagRef} already exists with digest ${state.digest.slice(0, 19)}… built from another source: tags are immutable; choose another version or allow overwriting in the plan`,
            { service: svc.name, reference: tagRef, digest: state.digest },
          );
        }
        const digest = await buildOne(svc, request, source, progress, report);
        progress.services[svc.name] = { state: 'pushed', digest };
        result[svc.name] = {
          service: svc.name,
          reference: `${deps.registryHost}/${svc.image}@${digest}`,
          tagReference: tagRef,
          digest,
          reused: false,
        };
        report();
      });
      return result;
    },
  };
}
