/**
 * The Gateway API CRDs (standard channel) for every sandbox cluster, so that
 * the gateway-api traffic provider writes real HTTPRoutes that the apiserver
 * validates with the project's own CEL rules. They ship in the Go module
 * sigs.k8s.io/gateway-api (config/crd/standard/), fetched from the Go module
 * proxy once into a GOMODCACHE outside the checkout. Only the
 * CustomResourceDefinitions are applied: the module's ValidatingAdmissionPolicy
 * guards upgrades of a real installation and has nothing to do here.
 */
import * as k8s from '@kubernetes/client-node';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import * as path from 'node:path';
import { sh, which } from './common';

/** The newest v1.x whose go.mod the Go toolchain here accepts (v1.7.0 wants go 1.27); its standard HTTPRoute has RequestMirror percent. */
export const GATEWAY_API_VERSION = 'v1.6.3';
const MODULE = 'sigs.k8s.io/gateway-api';

function modCache(): string {
  const base =
    process.env.DEPLOY_TOOLS_CACHE ??
    path.join(process.env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'deploy-pipelines');
  return path.join(base, 'gomod');
}

/** The module's directory: the cache's copy, else `go mod download` into the cache (the only variables go needs). */
function moduleDir(): string {
  const cached = path.join(modCache(), `${MODULE}@${GATEWAY_API_VERSION}`);
  if (existsSync(path.join(cached, 'config', 'crd', 'standard'))) return cached;
  const go = which('go') ?? (existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : undefined);
  if (!go)
    throw new Error(`the Gateway API CRDs are not in ${cached}, and there is no Go toolchain to fetch ${MODULE}`);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: homedir(),
    GOMODCACHE: modCache(),
    GOFLAGS: '-mod=mod',
    GOTOOLCHAIN: 'local',
    ...(process.env.GOPROXY ? { GOPROXY: process.env.GOPROXY } : {}),
  };
  const out = sh(go, ['mod', 'download', '-json', `${MODULE}@${GATEWAY_API_VERSION}`], { env, cwd: homedir() });
  const dir = (JSON.parse(out) as { Dir?: string }).Dir;
  if (!dir) throw new Error(`go mod download ${MODULE}@${GATEWAY_API_VERSION} gave no directory: ${out.slice(0, 300)}`);
  return dir;
}

/** The standard channel's CustomResourceDefinitions, as objects to apply. */
export function gatewayApiCrds(): k8s.V1CustomResourceDefinition[] {
  const dir = path.join(moduleDir(), 'config', 'crd', 'standard');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .flatMap((f) => k8s.loadAllYaml(readFileSync(path.join(dir, f), 'utf8')) as (k8s.KubernetesObject | null)[])
    .filter((o): o is k8s.V1CustomResourceDefinition => o?.kind === 'CustomResourceDefinition');
}
