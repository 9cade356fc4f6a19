/**
 * Worker versioning's settings (src/worker-versioning.ts), and the behaviour
 * every registered workflow declares (src/workflows/index.ts), held to the
 * table in docs/operations.md.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { buildIdOf, setCurrentCommand, workerVersioningFromEnv } from '../../src/worker-versioning';
import * as workflows from '../../src/workflows';
import { declaredVersioning } from '../../src/workflows/support/versioning';
import { REPO_ROOT } from '../helpers/tools';

const SHA = '92624f6dbe41c0ffee0000000000000000000000';

describe('buildIdOf', () => {
  test('the package version, then the first 12 hex digits of the commit, whether full or short', () => {
    expect(buildIdOf('0.1.0', SHA)).toBe('0.1.0+92624f6dbe41');
    expect(buildIdOf('0.1.0', SHA.slice(0, 12).toUpperCase())).toBe('0.1.0+92624f6dbe41');
    expect(buildIdOf('0.1.0', '92624f6')).toBe('0.1.0+92624f6');
  });

  test('a checkout with changes the commit does not have is marked dirty', () => {
    expect(buildIdOf('0.1.0', SHA, true)).toBe('0.1.0+92624f6dbe41.dirty');
  });

  test('a version that already has build metadata gets the commit appended to it', () => {
    expect(buildIdOf('0.1.0+ci', SHA)).toBe('0.1.0+ci.92624f6dbe41');
  });

  test('what is not a commit id is refused', () => {
    expect(() => buildIdOf('0.1.0', 'main')).toThrow('"main" is not a git commit id (7 to 40 hex digits)');
    expect(() => buildIdOf('0.1.0', 'abc123')).toThrow('is not a git commit id');
  });
});

describe('workerVersioningFromEnv', () => {
  test('nothing set: an unversioned worker, as before', () => {
    expect(workerVersioningFromEnv({}, '0.1.0')).toEqual({});
    expect(workerVersioningFromEnv({ TEMPORAL_DEPLOYMENT_NAME: ' ' }, '0.1.0')).toEqual({});
  });

  test('a build id without a deployment name is only reported: the worker stays unversioned', () => {
    expect(workerVersioningFromEnv({ DEPLOY_GIT_COMMIT: SHA }, '0.1.0')).toEqual({ buildId: '0.1.0+92624f6dbe41' });
    expect(workerVersioningFromEnv({ TEMPORAL_BUILD_ID: 'b-7' }, '0.1.0')).toEqual({ buildId: 'b-7' });
  });

  test('a deployment name and the commit: a versioned worker, auto-upgrade for runs that declare nothing', () => {
    expect(
      workerVersioningFromEnv({ TEMPORAL_DEPLOYMENT_NAME: 'deploy-pipelines', DEPLOY_GIT_COMMIT: SHA }, '0.1.0'),
    ).toEqual({
      buildId: '0.1.0+92624f6dbe41',
      deployment: {
        useWorkerVersioning: true,
        version: { deploymentName: 'deploy-pipelines', buildId: '0.1.0+92624f6dbe41' },
        defaultVersioningBehavior: 'AUTO_UPGRADE',
      },
    });
  });

  test('TEMPORAL_BUILD_ID wins over the commit', () => {
    const v = workerVersioningFromEnv(
      { TEMPORAL_DEPLOYMENT_NAME: 'deploy-pipelines', TEMPORAL_BUILD_ID: '2024-06-01.1', DEPLOY_GIT_COMMIT: SHA },
      '0.1.0',
    );
    expect(v.deployment?.version).toEqual({ deploymentName: 'deploy-pipelines', buildId: '2024-06-01.1' });
  });

  test('a deployment name needs a build id', () => {
    expect(() => workerVersioningFromEnv({ TEMPORAL_DEPLOYMENT_NAME: 'deploy-pipelines' }, '0.1.0')).toThrow(
      'TEMPORAL_DEPLOYMENT_NAME is set but there is no build id: set TEMPORAL_BUILD_ID, or DEPLOY_GIT_COMMIT for <package version>+<commit>',
    );
  });

  test('a deployment name with a dot is refused, as Temporal would refuse it', () => {
    expect(() =>
      workerVersioningFromEnv({ TEMPORAL_DEPLOYMENT_NAME: 'deploy.pipelines', TEMPORAL_BUILD_ID: 'b' }, '0.1.0'),
    ).toThrow('TEMPORAL_DEPLOYMENT_NAME "deploy.pipelines": a "." is not allowed');
  });

  test('spaces, control characters and overlong values are refused, naming the variable', () => {
    const named = { TEMPORAL_DEPLOYMENT_NAME: 'deploy-pipelines' };
    expect(() => workerVersioningFromEnv({ ...named, TEMPORAL_BUILD_ID: 'build 7' }, '0.1.0')).toThrow(
      'TEMPORAL_BUILD_ID "build 7": spaces and control characters are not allowed',
    );
    expect(() =>
      workerVersioningFromEnv({ TEMPORAL_DEPLOYMENT_NAME: 'deploy\tpipelines', TEMPORAL_BUILD_ID: 'b' }, '0.1.0'),
    ).toThrow('TEMPORAL_DEPLOYMENT_NAME');
    expect(() => workerVersioningFromEnv({ ...named, TEMPORAL_BUILD_ID: 'b'.repeat(256) }, '0.1.0')).toThrow(
      'TEMPORAL_BUILD_ID: longer than 255 characters',
    );
  });

  test('a DEPLOY_GIT_COMMIT that is not a commit is refused even without a deployment name', () => {
    expect(() => workerVersioningFromEnv({ DEPLOY_GIT_COMMIT: 'HEAD' }, '0.1.0')).toThrow(
      'DEPLOY_GIT_COMMIT: "HEAD" is not a git commit id (7 to 40 hex digits)',
    );
  });

  test('every error is one line', () => {
    for (const env of [{ TEMPORAL_DEPLOYMENT_NAME: 'x' }, { DEPLOY_GIT_COMMIT: 'nope' }]) {
      expect(() => workerVersioningFromEnv(env, '0.1.0')).toThrow(/^[^\n]+$/);
    }
  });
});

test('the command the worker prints to make its build current', () => {
  expect(setCurrentCommand({ deploymentName: 'deploy-pipelines', buildId: '0.1.0+92624f6dbe41' })).toBe(
    'temporal worker deployment set-current-version --deployment-name deploy-pipelines --build-id 0.1.0+92624f6dbe41',
  );
});

describe('the behaviour of each workflow type', () => {
  const declared = Object.fromEntries(
    Object.entries(workflows)
      .filter(([, fn]) => typeof fn === 'function')
      .map(([name, fn]) => [name, declaredVersioning(fn)]),
  );

  test('every workflow the worker registers declares one: bounded ones pinned, long-lived ones auto-upgrade', () => {
    expect(declared).toEqual({
      deployWorkflow: 'PINNED',
      canaryWorkflow: 'PINNED',
      blueGreenWorkflow: 'PINNED',
      rollbackWorkflow: 'PINNED',
      environmentLockWorkflow: 'PINNED',
      quarantineWorkflow: 'PINNED',
      releaseWorkflow: 'AUTO_UPGRADE',
      freezeWorkflow: 'AUTO_UPGRADE',
      retireColourWorkflow: 'AUTO_UPGRADE',
    });
  });

  test('docs/operations.md lists each with the behaviour it declares', () => {
    const doc = readFileSync(path.join(REPO_ROOT, 'docs', 'operations.md'), 'utf8');
    const rows = Object.fromEntries(
      [...doc.matchAll(/^\| `(\w+Workflow)` \| (PINNED|AUTO_UPGRADE) \|/gm)].map((m) => [m[1], m[2]]),
    );
    expect(rows).toEqual(declared);
  });
});

test('the Dockerfile turns its GIT_COMMIT build argument into the worker build id', () => {
  const dockerfile = readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8');
  const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  expect(runtime).toMatch(/^ARG GIT_COMMIT=$/m);
  expect(runtime).toMatch(/^ENV DEPLOY_GIT_COMMIT=\$\{GIT_COMMIT\}$/m);
});
