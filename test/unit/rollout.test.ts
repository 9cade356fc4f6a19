import {
  colourDeployment,
  colourDeploymentName,
  colourRollback,
  otherColour,
  selectedColour,
} from '../../src/domain/blue-green';
import { describeDiagnostics, diagnosePod } from '../../src/domain/diagnostics';
import {
  PodTemplateError,
  type DeploymentLike,
  type PodLike,
  type ReplicaSetLike,
} from '../../src/domain/kube-objects';
import {
  chooseUndoTarget,
  containerImages,
  imagePatch,
  previousRecord,
  PREVIOUS_IMAGES_ANNOTATION,
  PREVIOUS_VERSION_ANNOTATION,
  replicaSetSettled,
  revisionOf,
  rolloutStatus,
  templateForUndo,
  templatesEqualIgnoringHash,
  undoAnnotations,
  versionFromImage,
} from '../../src/domain/rollout';

function deployment(
  over: {
    generation?: number;
    replicas?: number;
    status?: NonNullable<DeploymentLike['status']>;
    annotations?: Record<string, string>;
  } = {},
): DeploymentLike {
  return {
    metadata: {
      name: 'api-gateway',
      namespace: 'ai-saas',
      generation: over.generation ?? 2,
      labels: { app: 'api-gateway' },
      annotations: over.annotations ?? { 'deploy-pipelines.dev/version': '1.0.0' },
    },
    spec: {
      replicas: over.replicas ?? 4,
      selector: { matchLabels: { app: 'api-gateway' } },
      template: {
        metadata: {
          labels: { app: 'api-gateway', track: 'stable' },
          annotations: { 'deploy-pipelines.dev/version': '1.0.0' },
        },
        spec: {
          containers: [
            { name: 'api-gateway', image: 'r:5000/ai-saas-api-gateway:1.0.0' },
            { name: 'sidecar', image: 'r:5000/proxy:2' },
          ],
        },
      },
    },
    status: over.status ?? {
      observedGeneration: 2,
      replicas: 4,
      updatedReplicas: 4,
      readyReplicas: 4,
      availableReplicas: 4,
    },
  };
}

describe('rolloutStatus (kubectl rollout status)', () => {
  test('waits until the controller has observed the new generation', () => {
    const s = rolloutStatus(deployment({ generation: 3 }));
    expect(s).toMatchObject({ done: false, failed: false });
    expect(s.message).toMatch(/spec update to be observed/);
  });

  test('counts updated, old and available replicas in kubectl order', () => {
    expect(
      rolloutStatus(
        deployment({ status: { observedGeneration: 2, replicas: 5, updatedReplicas: 2, availableReplicas: 4 } }),
      ).message,
    ).toMatch(/2 out of 4 new replicas have been updated/);
    expect(
      rolloutStatus(
        deployment({ status: { observedGeneration: 2, replicas: 5, updatedReplicas: 4, availableReplicas: 4 } }),
      ).message,
    ).toMatch(/1 old replicas are pending termination/);
    expect(
      rolloutStatus(
        deployment({ status: { observedGeneration: 2, replicas: 4, updatedReplicas: 4, availableReplicas: 3 } }),
      ).message,
    ).toMatch(/3 of 4 updated replicas are available/);
    expect(rolloutStatus(deployment())).toEqual({
      done: true,
      failed: false,
      message: 'deployment "api-gateway" successfully rolled out',
    });
  });

  test('ProgressDeadlineExceeded fails with the condition message', () => {
    const s = rolloutStatus(
      deployment({
        status: {
          observedGeneration: 2,
          replicas: 5,
          updatedReplicas: 1,
          availableReplicas: 4,
          conditions: [
            {
              type: 'Progressing',
              status: 'False',
              reason: 'ProgressDeadlineExceeded',
              message: 'ReplicaSet "api-gateway-abc" has timed out progressing.',
            },
          ],
        },
      }),
    );
    expect(s.failed).toBe(true);
    expect(s.message).toBe(
      'deployment "api-gateway" exceeded its progress deadline: ReplicaSet "api-gateway-abc" has timed out progressing.',
    );
  });

  test('a deadline condition from an older generation does not fail the new one', () => {
    const s = rolloutStatus(
      deployment({
        generation: 3,
        status: {
          observedGeneration: 2,
          conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded' }],
        },
      }),
    );
    expect(s.failed).toBe(false);
  });
});

describe('replicaSetSettled (the ReplicaSet behind a rolled-out Deployment)', () => {
  const d = deployment({ annotations: { 'deployment.kubernetes.io/revision': '3' } });
  d.metadata!.uid = 'u';
  const rs = (over: {
    revision?: string;
    generation?: number;
    status?: ReplicaSetLike['status'];
    owner?: string;
  }): ReplicaSetLike => ({
    metadata: {
      name: `api-gateway-${over.revision ?? '3'}`,
      generation: over.generation ?? 5,
      annotations: { 'deployment.kubernetes.io/revision': over.revision ?? '3' },
      ownerReferences: [{ uid: over.owner ?? 'u', kind: 'Deployment', name: 'api-gateway', controller: true }],
    },
    spec: { replicas: 4 },
    status: over.status ?? { observedGeneration: 5, replicas: 4, readyReplicas: 4, availableReplicas: 4 },
  });

  test('scaled to 0 and straight back up: the Deployment looks done, but its ReplicaSet has not observed the scale', () => {
    expect(rolloutStatus(d).done).toBe(true);
    const s = replicaSetSettled(d, [rs({ generation: 6 })]);
    expect(s).toMatchObject({ done: false, failed: false });
    expect(s.message).toBe('waiting for replica set "api-gateway-3" to observe its scale');
  });

  test('the ReplicaSet observed the scale but its new pods are not available yet', () => {
    const s = replicaSetSettled(d, [
      rs({ status: { observedGeneration: 5, replicas: 4, readyReplicas: 0, availableReplicas: 0 } }),
    ]);
    expect(s.done).toBe(false);
    expect(s.message).toMatch(/0 of 4 replicas of "api-gateway-3" are available/);
  });

  test("settled: the current revision's ReplicaSet is caught up, older ones do not count", () => {
    const old = rs({ revision: '2', generation: 9, status: { observedGeneration: 1 } });
    expect(replicaSetSettled(d, [old, rs({})])).toEqual(rolloutStatus(d));
    expect(replicaSetSettled(d, [old, rs({})]).done).toBe(true);
  });

  test('a ReplicaSet left by an earlier Deployment of the same name does not count', () => {
    const leftover = rs({ owner: 'old-uid', generation: 9, status: { observedGeneration: 1 } });
    expect(replicaSetSettled(d, [leftover, rs({})]).done).toBe(true);
    expect(replicaSetSettled(d, [leftover, rs({ generation: 6 })]).done).toBe(false);
  });

  test('without a listed ReplicaSet of its revision, the Deployment status decides', () => {
    expect(replicaSetSettled(d, [])).toEqual(rolloutStatus(d));
    expect(replicaSetSettled(deployment({ generation: 3 }), [rs({})]).done).toBe(false);
  });
});

describe('images, versions, revisions', () => {
  test('versionFromImage reads the tag of the last path segment, before a digest', () => {
    expect(versionFromImage('127.0.0.1:5000/ai-saas-api-gateway:1.0.1')).toBe('1.0.1');
    expect(versionFromImage('127.0.0.1:5000/ai-saas-api-gateway:1.0.1@sha256:abc')).toBe('1.0.1');
    expect(versionFromImage('127.0.0.1:5000/ai-saas-api-gateway@sha256:abc')).toBe('unknown');
    expect(versionFromImage('127.0.0.1:5000/ai-saas-api-gateway')).toBe('latest');
  });

  test('containerImages and revisionOf', () => {
    expect(containerImages(deployment().spec?.template)).toEqual({
      'api-gateway': 'r:5000/ai-saas-api-gateway:1.0.0',
      sidecar: 'r:5000/proxy:2',
    });
    expect(revisionOf({ metadata: { annotations: { 'deployment.kubernetes.io/revision': '7' } } })).toBe(7);
    expect(revisionOf({ metadata: {} })).toBeUndefined();
  });

  test('imagePatch sets containers by name, version on object and template, change-cause and the record', () => {
    const p = imagePatch({
      images: { 'api-gateway': 'r/x:1.0.1' },
      version: '1.0.1',
      workflowId: 'deploy-1',
      action: 'deploy',
      previousImages: { 'api-gateway': 'r/x:1.0.0' },
      previousVersion: '1.0.0',
      resourceVersion: '42',
    });
    expect(p).toEqual({
      metadata: {
        resourceVersion: '42',
        annotations: {
          'deploy-pipelines.dev/version': '1.0.1',
          'deploy-pipelines.dev/workflow-id': 'deploy-1',
          'kubernetes.io/change-cause': 'deploy-pipelines: deploy 1.0.1 (workflow deploy-1)',
          [PREVIOUS_IMAGES_ANNOTATION]: '{"api-gateway":"r/x:1.0.0"}',
          [PREVIOUS_VERSION_ANNOTATION]: '1.0.0',
        },
      },
      spec: {
        template: {
          metadata: { annotations: { 'deploy-pipelines.dev/version': '1.0.1' } },
          spec: { containers: [{ name: 'api-gateway', image: 'r/x:1.0.1' }] },
        },
      },
    });
  });

  test('previousRecord: what runs now, unless this workflow already applied the change (a retry after a crash)', () => {
    const fresh = deployment();
    expect(previousRecord(fresh, 'deploy-1', '1.0.1', { 'api-gateway': 'r/x:1.0.1' })).toEqual({
      previousImages: containerImages(fresh.spec?.template),
      previousVersion: '1.0.0',
    });
    const applied = deployment({
      annotations: {
        'deploy-pipelines.dev/version': '1.0.1',
        'deploy-pipelines.dev/workflow-id': 'deploy-1',
        [PREVIOUS_IMAGES_ANNOTATION]: '{"api-gateway":"r/x:1.0.0"}',
        [PREVIOUS_VERSION_ANNOTATION]: '1.0.0',
      },
    });
    applied.spec!.template.spec!.containers[0].image = 'r/x:1.0.1';
    expect(previousRecord(applied, 'deploy-1', '1.0.1', { 'api-gateway': 'r/x:1.0.1' })).toEqual({
      previousImages: { 'api-gateway': 'r/x:1.0.0', sidecar: 'r:5000/proxy:2' },
      previousVersion: '1.0.0',
    });
    // Another workflow's change is not ours to trust.
    expect(
      previousRecord(applied, 'deploy-2', '1.0.1', { 'api-gateway': 'r/x:1.0.1' }).previousImages['api-gateway'],
    ).toBe('r/x:1.0.1');
  });
});

describe('undo (kubectl rollout undo)', () => {
  const rs = (revision: number, image: string, hash: string): ReplicaSetLike => ({
    metadata: {
      name: `api-gateway-${hash}`,
      annotations: {
        'deployment.kubernetes.io/revision': String(revision),
        'deploy-pipelines.dev/version': image.split(':').pop() ?? '',
      },
    },
    spec: {
      template: {
        metadata: { labels: { app: 'api-gateway', 'pod-template-hash': hash } },
        spec: { containers: [{ name: 'api-gateway', image }] },
      },
    },
  });
  const history = [rs(1, 'x:1.0.0', 'a'), rs(3, 'x:1.0.2', 'c'), rs(2, 'x:1.0.1', 'b')];

  test('without a revision: the second newest', () => {
    const c = chooseUndoTarget('api-gateway', history);
    expect(c.ok && c.revision).toBe(2);
  });

  test('a given revision, or a clear error', () => {
    const c = chooseUndoTarget('api-gateway', history, 1);
    expect(c.ok && c.rs.metadata?.name).toBe('api-gateway-a');
    expect(chooseUndoTarget('api-gateway', history, 9)).toEqual({
      ok: false,
      error: 'unable to find the specified revision 9 of deployment "api-gateway"',
    });
    expect(chooseUndoTarget('api-gateway', [history[0]])).toEqual({
      ok: false,
      error: 'no rollout history found for deployment "api-gateway"',
    });
  });

  test('templates compare without the pod-template-hash; the undo template drops it', () => {
    const t = templateForUndo(history[0]);
    expect(t.metadata?.labels).toEqual({ app: 'api-gateway' });
    expect(templatesEqualIgnoringHash(history[0].spec?.template, t)).toBe(true);
    expect(templatesEqualIgnoringHash(history[0].spec?.template, history[1].spec?.template)).toBe(false);
    // The ReplicaSet itself is not changed.
    expect(history[0].spec?.template?.metadata?.labels?.['pod-template-hash']).toBe('a');
  });

  test('annotations come from the ReplicaSet except the ones kubectl keeps', () => {
    expect(
      undoAnnotations(
        { 'deployment.kubernetes.io/revision': '3', 'deploy-pipelines.dev/version': '1.0.2', other: 'x' },
        { 'deployment.kubernetes.io/revision': '1', 'deploy-pipelines.dev/version': '1.0.0' },
      ),
    ).toEqual({
      'deployment.kubernetes.io/revision': '3',
      'deploy-pipelines.dev/version': '1.0.0',
    });
  });
});

describe('blue-green colours', () => {
  test('blue is the base Deployment, green is <base>-green', () => {
    expect(colourDeploymentName('frontend', 'blue')).toBe('frontend');
    expect(colourDeploymentName('frontend', 'green')).toBe('frontend-green');
    expect(otherColour('blue')).toBe('green');
    expect(selectedColour({ app: 'frontend', version: 'green' })).toBe('green');
    expect(selectedColour({ app: 'frontend' })).toBeUndefined();
    expect(selectedColour({ app: 'frontend', version: '1.0.0' })).toBeUndefined();
  });

  test('the green Deployment: selector app+version, pods labelled green, new image and version', () => {
    const blue = deployment();
    blue.spec!.template.metadata!.labels!.version = 'blue';
    blue.spec!.template.metadata!.labels!['pod-template-hash'] = 'zzz';
    const g = colourDeployment(blue, {
      name: 'api-gateway-green',
      colour: 'green',
      container: 'api-gateway',
      image: 'r/x:1.0.1',
      version: '1.0.1',
      workflowId: 'wf',
      replicas: 4,
    });
    expect(g.metadata?.name).toBe('api-gateway-green');
    expect(g.spec?.selector.matchLabels).toEqual({ app: 'api-gateway', version: 'green' });
    expect(g.spec?.template.metadata?.labels).toEqual({ app: 'api-gateway', track: 'stable', version: 'green' });
    expect(g.spec?.template.metadata?.annotations?.['deploy-pipelines.dev/version']).toBe('1.0.1');
    expect(containerImages(g.spec?.template)).toEqual({ 'api-gateway': 'r/x:1.0.1', sidecar: 'r:5000/proxy:2' });
    expect(g.spec?.replicas).toBe(4);
    expect(g.metadata?.annotations?.['deploy-pipelines.dev/version']).toBe('1.0.1');
    // The blue object is untouched.
    expect(blue.spec?.template.metadata?.labels?.version).toBe('blue');
    expect(containerImages(blue.spec?.template)['api-gateway']).toBe('r:5000/ai-saas-api-gateway:1.0.0');
  });

  test('an unknown container is a PodTemplateError', () => {
    expect(() =>
      colourDeployment(deployment(), {
        name: 'x-green',
        colour: 'green',
        container: 'nope',
        image: 'i',
        version: 'v',
        workflowId: 'w',
        replicas: 1,
      }),
    ).toThrow(PodTemplateError);
  });
});

test('issue 16 item 5: where a manual rollback to the previous version goes for a colour-served Service', () => {
  const green = { colour: 'green' as const, deployment: 'web-green', version: '1.0.1' };
  const blue = { colour: 'blue' as const, deployment: 'web', version: '1.0.0' };
  expect(colourRollback({})).toBeUndefined();
  expect(colourRollback({ live: green, other: blue })).toEqual({
    kind: 'switch',
    from: 'green',
    to: 'blue',
    deployment: 'web',
    version: '1.0.0',
  });
  // A base Deployment from before blue-green carries no version: it is still what served before.
  expect(colourRollback({ live: green, other: { colour: 'blue', deployment: 'web' } })).toEqual({
    kind: 'switch',
    from: 'green',
    to: 'blue',
    deployment: 'web',
  });
  // The other colour runs the same version (or is gone): undo the Deployment that serves.
  expect(colourRollback({ live: green, other: { ...blue, version: '1.0.1' } })).toEqual({
    kind: 'undo',
    deployment: 'web-green',
  });
  expect(colourRollback({ live: blue })).toEqual({ kind: 'undo', deployment: 'web' });
});

describe('diagnostics', () => {
  const pending: PodLike = {
    metadata: { name: 'stuck-abc-1' },
    spec: { containers: [{ name: 'app' }] },
    status: {
      phase: 'Pending',
      conditions: [
        {
          type: 'PodScheduled',
          status: 'False',
          reason: 'Unschedulable',
          message: "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.",
        },
      ],
    },
  };

  test('a pod that is not Ready says why', () => {
    const d = diagnosePod(pending);
    expect(d).toMatchObject({ name: 'stuck-abc-1', phase: 'Pending', ready: false, restarts: 0 });
    expect(d.reasons[0]).toMatch(/PodScheduled=False Unschedulable: 0\/3 nodes are available/);
    const crashing = diagnosePod({
      metadata: { name: 'p' },
      spec: { containers: [{ name: 'app' }] },
      status: {
        phase: 'Running',
        containerStatuses: [
          {
            name: 'app',
            ready: false,
            restartCount: 4,
            state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 40s' } },
            lastState: { terminated: { reason: 'Error', exitCode: 1 } },
          },
        ],
      },
    });
    expect(crashing.restarts).toBe(4);
    expect(crashing.reasons).toEqual([
      'container app waiting: CrashLoopBackOff: back-off 40s',
      'container app restarted 4x, last: Error',
    ]);
  });

  test('the summary names the pods, their reasons, missing logs and warning events', () => {
    const text = describeDiagnostics({
      namespace: 'ai-saas',
      deployment: 'stuck',
      status: 'deployment "stuck" exceeded its progress deadline',
      conditions: [],
      notReadyPods: [{ ...diagnosePod(pending), logsUnavailable: 'pod stuck-abc-1 has no node yet' }],
      events: [
        {
          type: 'Normal',
          reason: 'ScalingReplicaSet',
          object: 'deployment/stuck',
          message: 'Scaled up replica set stuck-abc to 1',
        },
        { type: 'Warning', reason: 'FailedScheduling', object: 'pod/stuck-abc-1', message: '0/3 nodes are available' },
      ],
    });
    expect(text).toMatch(/pod stuck-abc-1 not Ready \(PodScheduled=False Unschedulable/);
    expect(text).toMatch(/logs unavailable: pod stuck-abc-1 has no node yet/);
    expect(text).toMatch(/events: Warning FailedScheduling pod\/stuck-abc-1: 0\/3 nodes are available/);
    expect(text).not.toMatch(/ScalingReplicaSet/);
  });
});
