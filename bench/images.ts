/**
 * Images: the services' images built and pushed by our buildImages activity
 * (dockerode, in parallel under a limit) against the runbook's "Build Docker
 * Images" done one after another with the docker CLI (`docker build`, then
 * `docker push`, per service), on the sandbox's Docker engine and registry.
 *
 * Every variant builds from the same release checkout with its own version
 * (the VERSION build arg changes every layer after the base image, so no
 * variant gets another's build cache) and its own image names. Variants run
 * in rounds, their order rotated each round, after one warm-up of each kind;
 * the ratios use each variant's median. Images are deleted from the engine
 * and the registry at the end.
 */
import Docker from 'dockerode';
import { rmSync } from 'node:fs';
import * as path from 'node:path';
import { GitRepo, ReleaseSource } from '../src/activities/clients/git';
import { BUILT_BY_LABEL, imagesActivities, REVISION_LABEL, VERSION_LABEL } from '../src/activities/images';
import { RegistryClient } from '../src/activities/clients/registry';
import type { PlannedService } from '../src/domain/plan';
import { platformRepoCopy } from '../test/helpers/git-fixture';
import { loadAverage, loadSandbox, runCommand, runId, sandboxVar, timed, type BenchOptions } from './common';
import { median, ms, ratio, type BenchReport, type Target } from './report';

const SERVICES = ['auth-service', 'chat-service', 'billing-service', 'analytics-service', 'api-gateway', 'frontend'];

const SIZES = {
  small: { services: SERVICES.slice(0, 2), limits: [1, 2], rounds: 1, labelled: false },
  full: { services: SERVICES, limits: [1, 2, 3, 6], rounds: 3, labelled: true },
};

type Variant = { kind: 'runbook'; labels?: boolean } | { kind: 'activity'; limit: number };

const label = (v: Variant) =>
  v.kind === 'runbook'
    ? `runbook: docker build + docker push, one service after another${v.labels ? ", with buildImages' three labels" : ''}`
    : `buildImages, concurrency ${v.limit}`;

export async function imagesBench(opts: BenchOptions, log: (s: string) => void): Promise<BenchReport> {
  const startedAt = new Date();
  const loadStart = loadAverage();
  loadSandbox();
  const size = SIZES[opts.size];
  const run = runId();
  const registryHost = sandboxVar('REGISTRY');
  const docker = new Docker({ socketPath: sandboxVar('DOCKER_HOST').replace('unix://', '') });
  const registry = new RegistryClient(registryHost, true);
  const fx = platformRepoCopy();
  const source = new ReleaseSource(new GitRepo(fx.checkout), path.join(fx.checkout, '..', 'src'));
  const srcDir = await source.at(fx.head);
  const pushed: { image: string; version: string }[] = [];
  let counter = 0;
  // The legacy builder is what the Docker API (and so dockerode) builds with; the CLI is told to use it too, so the builders are the same.
  const cliEnv = { ...process.env, DOCKER_BUILDKIT: '0' };

  const services = (prefix: string): PlannedService[] =>
    size.services.map((name) => ({
      name,
      image: `${prefix}-${name}`,
      context: `services/${name}`,
      dockerfile: 'Dockerfile',
      deployment: name,
      container: name,
      reference: '',
    }));

  const once = async (v: Variant): Promise<number> => {
    const k = ++counter;
    const prefix = `bench${run}v${k}`;
    const version = `1.0.0-bench${run}.${k}`;
    for (const s of size.services) pushed.push({ image: `${prefix}-${s}`, version });
    if (v.kind === 'runbook') {
      const { ms: t } = await timed(async () => {
        for (const s of size.services) {
          const labels = v.labels
            ? [REVISION_LABEL, VERSION_LABEL, BUILT_BY_LABEL].flatMap((l, i) => [
                '--label',
                `${l}=${[fx.head, version, `bench-images-${run}-${k}`][i]}`,
              ])
            : [];
          await runCommand(
            'docker',
            [
              'build',
              '-q',
              '--network',
              'none',
              ...labels,
              '--build-arg',
              `VERSION=${version}`,
              '-t',
              `${registryHost}/${prefix}-${s}:${version}`,
              path.join(srcDir, 'services', s),
            ],
            { env: cliEnv },
          );
        }
        for (const s of size.services)
          await runCommand('docker', ['push', '-q', `${registryHost}/${prefix}-${s}:${version}`], { env: cliEnv });
      });
      return t;
    }
    const acts = imagesActivities({
      docker,
      registry,
      registryHost,
      sourceAt: (c) => source.at(c),
      concurrency: v.limit,
      heartbeat: () => undefined,
      previous: () => undefined,
    });
    const { ms: t, value } = await timed(() =>
      acts.buildImages({
        workflowId: `bench-images-${run}-${k}`,
        version,
        commit: fx.head,
        services: services(prefix),
        allowOverwrite: false,
      }),
    );
    if (Object.values(value).some((i) => i.reused))
      throw new Error('an image was reused: the variants would not be comparable');
    return t;
  };

  const variants: Variant[] = [
    { kind: 'runbook' },
    ...(size.labelled ? [{ kind: 'runbook' as const, labels: true }] : []),
    ...size.limits.map((limit) => ({ kind: 'activity' as const, limit })),
  ];
  const times = new Map<Variant, number[]>(variants.map((v) => [v, []]));
  try {
    log('warm-up: one runbook and one parallel build (not measured)');
    await once({ kind: 'runbook' });
    await once({ kind: 'activity', limit: size.limits[size.limits.length - 1] });
    for (let round = 0; round < size.rounds; round++) {
      const order = variants.map((_, i) => variants[(i + round) % variants.length]);
      for (const v of order) {
        const t = await once(v);
        times.get(v)!.push(t);
        log(`round ${round + 1}: ${label(v)}: ${ms(t)}`);
      }
    }

    const runbook = median(times.get(variants[0])!);
    const sequential = median(times.get(variants.find((v) => v.kind === 'activity' && v.limit === 1)!)!);
    const perImage = sequential / runbook;
    const rows = variants.map((v) => {
      const ts = times.get(v)!;
      const m = median(ts);
      return [
        label(v),
        ms(m),
        ts.map((t) => ms(t)).join(', '),
        ratio(m / runbook),
        v.kind === 'activity' ? ratio(m / sequential) : '',
      ];
    });
    const targets: Target[] = variants
      .filter((v): v is Extract<Variant, { kind: 'activity' }> => v.kind === 'activity' && v.limit > 1)
      .map((v) => {
        const r = median(times.get(v)!) / runbook;
        return {
          name: `${size.services.length} images, concurrency ${v.limit} vs runbook`,
          measured: ratio(r),
          wanted: '<= 0.50x',
          pass: r <= 0.5,
          ...(r > 0.5
            ? {
                why: `one after another, buildImages takes ${ratio(perImage)} the runbook's time, so ${v.limit} at once give about ${ratio(perImage / v.limit)}; ${Math.ceil(perImage / 0.5)} or more at once are needed`,
              }
            : {}),
        };
      });
    return {
      name: 'images',
      title: 'Images: parallel build and push vs the runbook',
      size: opts.size,
      startedAt,
      durationMs: Date.now() - startedAt.getTime(),
      load: { start: loadStart, end: loadAverage() },
      setup: [
        `${size.services.length} services of the demo platform (${size.services.join(', ')}), built from a copy of the sandbox's release repository at ${fx.head.slice(0, 12)} and pushed to the sandbox registry (${registryHost})`,
        `${size.rounds} measured round(s) after a warm-up, variant order rotated each round; each build uses a new version and new image names (no shared build cache beyond the base image)`,
      ],
      tables: [
        {
          title: 'Wall time, median of the rounds',
          columns: ['variant', 'median', 'each round', 'vs runbook', 'vs concurrency 1'],
          rows,
        },
      ],
      targets,
      notes: [
        `Scaling: concurrency N takes ${size.limits.map((l) => `${ratio(median(times.get(variants.find((v) => v.kind === 'activity' && v.limit === l)!)!) / sequential)} (N=${l})`).join(', ')} of concurrency 1: the legacy builder's steps wait (container create, commit) far more than they compute, so builds overlap well even on 2 CPUs.`,
        ...(size.labelled
          ? [
              `The labels buildImages puts on each image (revision, version, workflow id: how a retry recognises its own images) cost a build step of their own in the legacy builder: the runbook with the same three labels takes ${ratio(median(times.get(variants[1])!) / runbook)} the runbook's time.`,
            ]
          : []),
        'The runbook variant runs the docker CLI with the legacy builder (DOCKER_BUILDKIT=0), the builder the Engine API gives dockerode, so the comparison is of scheduling, not of builders. The CLI has no buildx here.',
        'buildImages also checks the registry before building, labels the images and reads each pushed digest back from the registry; these costs are inside its times.',
      ],
    };
  } finally {
    for (const { image, version } of pushed) {
      await docker
        .getImage(`${registryHost}/${image}:${version}`)
        .remove({ force: true })
        .catch(() => undefined);
      const digest = await registry.digest(image, version).catch(() => undefined);
      if (digest)
        await fetch(`http://${registryHost}/v2/${image}/manifests/${digest}`, { method: 'DELETE' }).catch(
          () => undefined,
        );
    }
    await source.repo.git(['worktree', 'prune']).catch(() => undefined);
    rmSync(path.dirname(fx.checkout), { recursive: true, force: true });
  }
}
