/**
 * Images against the sandbox's real Docker engine and registry: six services
 * built and pushed with digests verified, no rebuild on re-run, build failures
 * with their log, immutable tags, and a registry outage during a push.
 */
import Docker from 'dockerode';
import { randomBytes } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { GitRepo, ReleaseSource } from '../../src/activities/clients/git';
import type { ImagesProgress } from '../../src/activities/contracts';
import { imagesActivities } from '../../src/activities/images';
import { RegistryClient } from '../../src/activities/clients/registry';
import type { PlannedService } from '../../src/domain/plan';
import { git, platformRepoCopy, type RepoFixture } from '../helpers/git-fixture';
import { sandboxVar } from '../helpers/sandbox';
import { FaultProxy } from '../helpers/fault-proxy';

const SERVICES = ['auth-service', 'chat-service', 'billing-service', 'analytics-service', 'api-gateway', 'frontend'];
let fx: RepoFixture;
let source: ReleaseSource;
let docker: Docker;

beforeAll(() => {
  fx = platformRepoCopy();
  source = new ReleaseSource(new GitRepo(fx.checkout), path.join(fx.checkout, '..', 'src'));
  docker = new Docker({ socketPath: sandboxVar('DOCKER_HOST').replace('unix://', '') });
});

function services(prefix: string, names = SERVICES): PlannedService[] {
  return names.map((name) => ({
    name,
    image: `${prefix}-${name}`,
    context: `services/${name}`,
    dockerfile: 'Dockerfile',
    deployment: name,
    container: name,
    reference: '',
  }));
}

function harness(registryHost = sandboxVar('REGISTRY'), previous?: ImagesProgress) {
  const beats: ImagesProgress[] = [];
  const acts = imagesActivities({
    docker,
    registry: new RegistryClient(registryHost, true),
    registryHost,
    sourceAt: (c) => source.at(c),
    concurrency: 3,
    heartbeat: (d) => beats.push(structuredClone(d)),
    previous: () => previous,
  });
  return { acts, beats };
}

const unique = () => `it${randomBytes(3).toString('hex')}`;

test('six images are built in parallel, pushed, and their digests match the registry; a re-run rebuilds nothing', async () => {
  const prefix = unique();
  const { acts, beats } = harness();
  const result = await acts.buildImages({
    workflowId: 'wf-img',
    version: '1.0.1',
    commit: fx.head,
    services: services(prefix),
    allowOverwrite: false,
  });
  const registry = new RegistryClient(sandboxVar('REGISTRY'), true);
  for (const name of SERVICES) {
    const img = result[name];
    expect(img.reused).toBe(false);
    expect(img.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await registry.digest(`${prefix}-${name}`, '1.0.1')).toBe(img.digest);
    expect(img.reference).toBe(`${sandboxVar('REGISTRY')}/${prefix}-${name}@${img.digest}`);
    expect((await registry.labels(`${prefix}-${name}`, '1.0.1'))['org.opencontainers.image.revision']).toBe(fx.head);
  }
  // Heartbeats went through building and pushing for every service.
  const states = new Set(beats.flatMap((b) => Object.values(b.services).map((s) => s.state)));
  expect([...states]).toEqual(expect.arrayContaining(['building', 'pushing', 'pushed']));
  // Parallel: at some point more than one service was in flight.
  expect(
    beats.some(
      (b) => Object.values(b.services).filter((s) => s.state === 'building' || s.state === 'pushing').length > 1,
    ),
  ).toBe(true);

  const second = harness();
  const again = await second.acts.buildImages({
    workflowId: 'wf-img-2',
    version: '1.0.1',
    commit: fx.head,
    services: services(prefix),
    allowOverwrite: false,
  });
  for (const name of SERVICES) {
    expect(again[name]).toMatchObject({ reused: true, digest: result[name].digest });
  }
  expect(second.beats.flatMap((b) => Object.values(b.services).map((s) => s.state))).not.toContain('building');
}, 240_000);

test('a broken Dockerfile fails with the failing step and its log', async () => {
  const repo = platformRepoCopy();
  appendFileSync(
    path.join(repo.checkout, 'services/billing-service/Dockerfile'),
    'RUN echo "about to fail" && exit 3\n',
  );
  git(repo.checkout, 'commit', '-qam', 'Break the billing build');
  git(repo.checkout, 'push', '-q', 'origin', 'main');
  const commit = git(repo.checkout, 'rev-parse', 'HEAD').trim();
  const src = new ReleaseSource(new GitRepo(repo.checkout), path.join(repo.checkout, '..', 'src'));
  const acts = imagesActivities({
    docker,
    registry: new RegistryClient(sandboxVar('REGISTRY'), true),
    registryHost: sandboxVar('REGISTRY'),
    sourceAt: (c) => src.at(c),
    concurrency: 1,
    heartbeat: () => undefined,
    previous: () => undefined,
  });
  const err = await acts
    .buildImages({
      workflowId: 'wf-broken',
      version: '1.0.2',
      commit,
      services: services(unique(), ['billing-service']),
      allowOverwrite: false,
    })
    .catch((e: unknown) => e);
  expect(err).toMatchObject({ type: 'BuildFailed', nonRetryable: true });
  expect((err as Error).message).toMatch(
    /build of billing-service failed at "Step \d+\/\d+ : RUN echo "about to fail" && exit 3"/,
  );
  expect((err as Error).message).toMatch(/returned a non-zero code: 3/);
  expect(JSON.stringify((err as { details: unknown[] }).details)).toContain('about to fail');
}, 120_000);

test('a tag already holding another image is an ImageTagConflict unless overwriting is allowed', async () => {
  const prefix = unique();
  const older = git(fx.checkout, 'rev-parse', 'v1.0.0^{commit}').trim();
  const { acts } = harness();
  // Someone pushed 1.0.1 built from another commit.
  const foreign = await acts.buildImages({
    workflowId: 'wf-other',
    version: '1.0.1',
    commit: older,
    services: services(prefix, ['frontend']),
    allowOverwrite: false,
  });
  const err = await acts
    .buildImages({
      workflowId: 'wf-mine',
      version: '1.0.1',
      commit: fx.head,
      services: services(prefix, ['frontend']),
      allowOverwrite: false,
    })
    .catch((e: unknown) => e);
  expect(err).toMatchObject({ type: 'ImageTagConflict', nonRetryable: true });
  expect((err as Error).message).toContain(
    `${prefix}-frontend:1.0.1 already exists with digest ${foreign.frontend.digest.slice(0, 19)}`,
  );
  const overwritten = await acts.buildImages({
    workflowId: 'wf-mine',
    version: '1.0.1',
    commit: fx.head,
    services: services(prefix, ['frontend']),
    allowOverwrite: true,
  });
  expect(overwritten.frontend.reused).toBe(false);
  expect(overwritten.frontend.digest).not.toBe(foreign.frontend.digest);
}, 180_000);

test('a registry outage during a push fails the attempt; the retry completes without rebuilding', async () => {
  const proxy = new FaultProxy('registry', Number(sandboxVar('REGISTRY').split(':')[1]));
  await proxy.start();
  const prefix = unique();
  const names = ['auth-service', 'chat-service'];
  let cut = false;
  const beats: ImagesProgress[] = [];
  const acts = imagesActivities({
    docker,
    registry: new RegistryClient(proxy.address, true),
    registryHost: proxy.address,
    sourceAt: (c) => source.at(c),
    concurrency: 2,
    heartbeat: (d) => {
      beats.push(structuredClone(d));
      if (!cut && Object.values(d.services).some((s) => s.state === 'pushing')) {
        cut = true;
        void proxy.cut();
      }
    },
    previous: () => undefined,
  });
  try {
    const first = await acts
      .buildImages({
        workflowId: 'wf-outage',
        version: '1.0.1',
        commit: fx.head,
        services: services(prefix, names),
        allowOverwrite: false,
      })
      .catch((e: unknown) => e);
    expect(cut).toBe(true);
    expect(first).toBeInstanceOf(Error);
    expect((first as { nonRetryable?: boolean }).nonRetryable).not.toBe(true);
    await proxy.restore();
    const retryBeats: ImagesProgress[] = [];
    const retry = imagesActivities({
      docker,
      registry: new RegistryClient(proxy.address, true),
      registryHost: proxy.address,
      sourceAt: (c) => source.at(c),
      concurrency: 2,
      heartbeat: (d) => retryBeats.push(structuredClone(d)),
      previous: () => beats.at(-1),
    });
    const result = await retry.buildImages({
      workflowId: 'wf-outage',
      version: '1.0.1',
      commit: fx.head,
      services: services(prefix, names),
      allowOverwrite: false,
    });
    const registry = new RegistryClient(sandboxVar('REGISTRY'), true);
    for (const n of names) expect(await registry.digest(`${prefix}-${n}`, '1.0.1')).toBe(result[n].digest);
    // The images built by the first attempt were pushed, not built again.
    expect(retryBeats.flatMap((b) => Object.values(b.services).map((s) => s.state))).not.toContain('building');
  } finally {
    await proxy.cut();
  }
}, 240_000);

test('a registry that refuses the worker (403) is a non-retryable RegistryAccessDenied, before anything is built', async () => {
  // The sandbox registry has no authentication, so a revoked credential cannot be had from it:
  // a loopback endpoint answers the way a registry does then (403 DENIED).
  let requests = 0;
  const denying = createServer((req, res) => {
    requests++;
    req.resume();
    res.writeHead(403, { 'content-type': 'application/json' });
    res.end('{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}');
  });
  await new Promise<void>((resolve) => denying.listen(0, '127.0.0.1', resolve));
  try {
    const { acts, beats } = harness(`127.0.0.1:${(denying.address() as AddressInfo).port}`);
    const err = await acts
      .buildImages({
        workflowId: 'wf-denied',
        version: '1.0.1',
        commit: fx.head,
        services: services(unique(), ['frontend']),
        allowOverwrite: false,
      })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ type: 'RegistryAccessDenied', nonRetryable: true });
    expect((err as Error).message).toMatch(/^frontend: registry answered 403 .*check the registry user and password/);
    expect(requests).toBeGreaterThan(0);
    expect(beats.flatMap((b) => Object.values(b.services).map((x) => x.state))).not.toContain('building');
  } finally {
    await new Promise((resolve) => denying.close(resolve));
  }
});

test('a bad version is refused before anything runs', async () => {
  const { acts, beats } = harness();
  await expect(
    acts.buildImages({
      workflowId: 'wf-bad',
      version: '1.0.1; rm -rf /',
      commit: fx.head,
      services: services(unique(), ['frontend']),
      allowOverwrite: false,
    }),
  ).rejects.toMatchObject({ type: 'InvalidInput' });
  expect(beats).toHaveLength(0);
});
