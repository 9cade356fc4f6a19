import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { parseConfig } from '../../src/domain/config';
import {
  contentHash,
  effectiveRenames,
  inverseRenames,
  isBaseOrSnapshotOf,
  mergeSnapshotRefs,
  parseRenames,
  parseSnapshotRefs,
  PREVIOUS_REFERENCES_ANNOTATION,
  rewriteReferences,
  snapshotName,
  snapshotsToPrune,
  templateReferences,
} from '../../src/domain/config-snapshots';
import { referencePatch, referencesRecord } from '../../src/domain/reference-patch';
import { VERSION_ANNOTATION, WORKFLOW_ANNOTATION } from '../../src/domain/rollout';
import { REPO_ROOT } from '../helpers/tools';

/** A pod template naming ConfigMaps and Secrets in every place Kubernetes allows. */
function template() {
  return {
    metadata: { labels: { app: 'auth-service' } },
    spec: {
      initContainers: [{ name: 'init', envFrom: [{ secretRef: { name: 'init-secret' } }] }],
      containers: [
        {
          name: 'auth-service',
          image: 'auth:1',
          env: [
            { name: 'PLAIN', value: 'x' },
            { name: 'A', valueFrom: { configMapKeyRef: { name: 'auth-config', key: 'a' } } },
            { name: 'B', valueFrom: { secretKeyRef: { name: 'auth-secret', key: 'b', optional: true } } },
          ],
          envFrom: [{ configMapRef: { name: 'shared-config' } }, { secretRef: { name: 'auth-secret' } }],
        },
      ],
      volumes: [
        { name: 'cfg', configMap: { name: 'auth-config' } },
        { name: 'tls', secret: { secretName: 'tls-secret', optional: true } },
        {
          name: 'proj',
          projected: { sources: [{ configMap: { name: 'proj-config' } }, { secret: { name: 'proj-secret' } }] },
        },
      ],
    },
  };
}

describe('contentHash', () => {
  test('is sha256 hex and does not depend on key order', () => {
    const a = contentHash({ data: { b: '2', a: '1' } });
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(contentHash({ data: { a: '1', b: '2' } })).toBe(a);
    expect(contentHash({ data: { a: '1', b: '3' } })).not.toBe(a);
    expect(contentHash({ binaryData: { a: '1', b: '2' } })).not.toBe(a);
    expect(contentHash({})).toBe(contentHash({ data: {}, binaryData: {} }));
  });

  test('snapshot names carry 10 hex digits and are recognised as the base', () => {
    const hash = contentHash({ data: { a: '1' } });
    const name = snapshotName('auth-config', hash);
    expect(name).toBe(`auth-config-${hash.slice(0, 10)}`);
    expect(isBaseOrSnapshotOf(name, 'auth-config')).toBe(true);
    expect(isBaseOrSnapshotOf('auth-config', 'auth-config')).toBe(true);
    expect(isBaseOrSnapshotOf('auth-config-extra', 'auth-config')).toBe(false);
    expect(isBaseOrSnapshotOf('auth', 'auth-config')).toBe(false);
  });
});

describe('templateReferences', () => {
  test('finds env, envFrom, volumes and projected sources, in init containers too, each once', () => {
    expect(templateReferences(template())).toEqual([
      { kind: 'ConfigMap', name: 'auth-config', optional: false },
      // optional in env, required in envFrom: required
      { kind: 'Secret', name: 'auth-secret', optional: false },
      { kind: 'ConfigMap', name: 'shared-config', optional: false },
      { kind: 'Secret', name: 'init-secret', optional: false },
      { kind: 'Secret', name: 'tls-secret', optional: true },
      { kind: 'ConfigMap', name: 'proj-config', optional: false },
      { kind: 'Secret', name: 'proj-secret', optional: false },
    ]);
  });

  test('a template without a spec references nothing', () => {
    expect(templateReferences(undefined)).toEqual([]);
    expect(templateReferences({ spec: { containers: [{ name: 'x' }] } })).toEqual([]);
  });
});

describe('rewriteReferences', () => {
  test('renames every site of the matching kind and never changes the input', () => {
    const t = template();
    const before = JSON.stringify(t);
    const out = rewriteReferences(t, [
      { kind: 'ConfigMap', from: 'auth-config', to: 'auth-config-0123456789' },
      { kind: 'Secret', from: 'auth-secret', to: 'auth-secret-abcdefabcd' },
      { from: 'tls-secret', to: 'tls-secret-1111111111' },
      { kind: 'ConfigMap', from: 'proj-secret', to: 'wrong-kind' },
    ]);
    expect(JSON.stringify(t)).toBe(before);
    const names = templateReferences(out).map((r) => `${r.kind}/${r.name}`);
    expect(names).toEqual([
      'ConfigMap/auth-config-0123456789',
      'Secret/auth-secret-abcdefabcd',
      'ConfigMap/shared-config',
      'Secret/init-secret',
      'Secret/tls-secret-1111111111',
      'ConfigMap/proj-config',
      'Secret/proj-secret',
    ]);
    expect(out.spec.volumes[0].configMap?.name).toBe('auth-config-0123456789');
    expect(out.spec.volumes[1].secret?.secretName).toBe('tls-secret-1111111111');
    expect(out.spec.containers[0].image).toBe('auth:1');
  });

  test('the inverse of the effective renames goes back to the original', () => {
    const t = template();
    const renames = [
      { kind: 'ConfigMap' as const, from: 'auth-config', to: 'auth-config-0123456789' },
      { kind: 'ConfigMap' as const, from: 'not-referenced', to: 'x' },
    ];
    const effective = effectiveRenames(t, renames);
    expect(effective).toEqual([renames[0]]);
    expect(rewriteReferences(rewriteReferences(t, effective), inverseRenames(effective))).toEqual(t);
  });
});

describe('annotations and pruning', () => {
  test('renames and snapshot lists round-trip; damaged ones are not trusted', () => {
    const r = [{ kind: 'Secret' as const, from: 'a', to: 'b' }];
    expect(parseRenames(JSON.stringify(r))).toEqual(r);
    expect(parseRenames('{')).toBeUndefined();
    expect(parseRenames('[{"from":1}]')).toBeUndefined();
    expect(parseSnapshotRefs('[{"kind":"ConfigMap","name":"a"},{"kind":"Pod","name":"b"}]')).toEqual([
      { kind: 'ConfigMap', name: 'a' },
    ]);
    expect(parseSnapshotRefs('nope')).toEqual([]);
    expect(
      mergeSnapshotRefs(
        [{ kind: 'Secret', name: 'b' }],
        [
          { kind: 'ConfigMap', name: 'a' },
          { kind: 'Secret', name: 'b' },
        ],
      ),
    ).toEqual([
      { kind: 'ConfigMap', name: 'a' },
      { kind: 'Secret', name: 'b' },
    ]);
  });

  test('keeps what any template references, prunes the rest', () => {
    const recorded = [
      { kind: 'ConfigMap' as const, name: 'auth-config' },
      { kind: 'Secret' as const, name: 'auth-secret' },
      { kind: 'ConfigMap' as const, name: 'old-config' },
      { kind: 'Secret' as const, name: 'shared-config' }, // same name, other kind: not referenced
    ];
    const { prune, keep } = snapshotsToPrune(recorded, [template(), undefined]);
    expect(keep.map((k) => k.name)).toEqual(['auth-config', 'auth-secret']);
    expect(prune.map((k) => k.name)).toEqual(['old-config', 'shared-config']);
  });
});

describe('config: services[].configMaps', () => {
  const EXAMPLE = path.join(REPO_ROOT, 'deploy.config.yaml');
  const withMaps = (configMaps: unknown) => {
    const raw = parse(readFileSync(EXAMPLE, 'utf8'));
    raw.services[0].configMaps = configMaps;
    return parseConfig(raw, 'deploy.config.yaml', { REGISTRY: '127.0.0.1:5000' });
  };

  test('defaults to none and accepts files and directories', () => {
    expect(withMaps(undefined).services[0].configMaps).toEqual([]);
    const maps = [
      { name: 'auth-service-config', path: 'config/auth-service' },
      { name: 'auth-service.flags', path: 'config/flags.yaml' },
    ];
    expect(withMaps(maps).services[0].configMaps).toEqual(maps);
  });

  test.each([
    [[{ name: 'Auth_Config', path: 'config/auth' }], 'Kubernetes object name'],
    [[{ name: 'auth-config', path: '../etc/passwd' }], 'relative path'],
    [[{ name: 'auth-config', path: 'config/../../x' }], 'relative path'],
    [[{ name: 'auth-config', path: '/etc/passwd' }], 'relative path'],
    [[{ name: 'auth-config', path: 'config//x' }], 'relative path'],
    [[{ name: 'x'.repeat(243), path: 'a' }], '242'],
    [
      [
        { name: 'auth-config', path: 'a' },
        { name: 'auth-config', path: 'b' },
      ],
      'unique',
    ],
    [[{ name: 'auth-config', path: 'a', extra: 1 }], 'extra'],
  ])('refuses %j', (configMaps, message) => {
    expect(() => withMaps(configMaps)).toThrow(message);
  });
});

describe('the reference half of an image patch', () => {
  const deployment = (annotations: Record<string, string> = {}) => ({
    metadata: { annotations },
    spec: { selector: {}, template: template() },
  });
  const renames = [{ kind: 'ConfigMap' as const, from: 'auth-config', to: 'auth-config-0123456789' }];

  test('records the inverse renames, and rewrites containers and volumes with the new image', () => {
    const d = deployment();
    const rec = referencesRecord(d, 'wf', '1.0.1', { 'auth-service': 'auth:2' }, renames);
    expect(rec).toEqual({ applied: false, previous: inverseRenames(renames) });
    const body = {
      metadata: { annotations: {} as Record<string, unknown> },
      spec: { template: { spec: { containers: [] } as Record<string, unknown> } },
    };
    referencePatch(body, d.spec.template, { 'auth-service': 'auth:2' }, renames, rec.previous!);
    expect(JSON.parse(body.metadata.annotations[PREVIOUS_REFERENCES_ANNOTATION] as string)).toEqual(rec.previous);
    const spec = body.spec.template.spec as unknown as ReturnType<typeof template>['spec'];
    expect(spec.containers[0].image).toBe('auth:2');
    expect(spec.volumes[0].configMap?.name).toBe('auth-config-0123456789');
    expect(spec.initContainers).toHaveLength(1);
  });

  test('a retry of the same change keeps the recorded renames; no references, no record', () => {
    const applied = { ...deployment(), spec: { selector: {}, template: rewriteReferences(template(), renames) } };
    applied.metadata.annotations = {
      [WORKFLOW_ANNOTATION]: 'wf',
      [VERSION_ANNOTATION]: '1.0.1',
      [PREVIOUS_REFERENCES_ANNOTATION]: JSON.stringify(inverseRenames(renames)),
    };
    expect(referencesRecord(applied, 'wf', '1.0.1', { 'auth-service': 'auth:1' }, renames)).toEqual({
      applied: true,
      previous: inverseRenames(renames),
    });
    expect(referencesRecord(applied, 'other', '1.0.1', {}, renames)).toEqual({ applied: true, previous: [] });
    expect(referencesRecord(deployment(), 'wf', '1.0.1', {}, undefined)).toEqual({ applied: true });
  });
});
