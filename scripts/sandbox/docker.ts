/**
 * A Docker engine (Debian docker.io, vfs storage, no bridge, no iptables) on a
 * socket under .sandbox, and a registry (Debian docker-registry) on
 * 127.0.0.1. Nothing is pulled: the base image is imported from the
 * machine's static busybox.
 */
import { copyFileSync, existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  ensureDir,
  HOST,
  PORTS,
  running,
  sh,
  startDaemon,
  stopDaemon,
  waitReady,
  which,
  type Component,
} from './common';

export const BASE_IMAGE = 'sandbox/busybox:1';

export function dockerSocket(): string {
  return path.join(ensureDir('docker'), 'docker.sock');
}
export function dockerHost(): string {
  return `unix://${dockerSocket()}`;
}
export function registryHost(): string {
  return `${HOST}:${PORTS.REGISTRY}`;
}

function dockerEnv(): NodeJS.ProcessEnv {
  return { ...process.env, DOCKER_HOST: dockerHost() };
}

export function docker(args: string[], input?: string): string {
  return sh('docker', args, { env: dockerEnv(), ...(input !== undefined ? { input } : {}) });
}

async function engineReady(): Promise<boolean> {
  try {
    docker(['version', '--format', '{{.Server.Version}}']);
    return true;
  } catch {
    return false;
  }
}

/** A FROM-able base image made from the static busybox on this machine. */
function ensureBaseImage(): void {
  try {
    docker(['image', 'inspect', BASE_IMAGE]);
    return;
  } catch {
    // not there yet
  }
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
  if (!busybox) throw new Error('busybox not found: install Debian busybox-static (scripts/setup.sh does)');
  const root = ensureDir('docker', 'base-rootfs');
  rmSync(root, { recursive: true, force: true });
  mkdirSync(path.join(root, 'bin'), { recursive: true });
  mkdirSync(path.join(root, 'tmp'), { recursive: true });
  copyFileSync(busybox, path.join(root, 'bin', 'busybox'));
  for (const applet of ['sh', 'echo', 'cat', 'ls', 'true', 'false', 'sleep', 'test', 'mkdir', 'cp', 'env', 'grep']) {
    symlinkSync('busybox', path.join(root, 'bin', applet));
  }
  const tar = path.join(ensureDir('docker'), 'base.tar');
  sh('tar', ['-C', root, '-cf', tar, '.']);
  docker(['import', '--change', 'ENV PATH=/bin', '--change', 'CMD ["/bin/sh"]', tar, BASE_IMAGE]);
}

async function registryReady(): Promise<boolean> {
  const r = await fetch(`http://${registryHost()}/v2/`);
  return r.ok;
}

export function dockerComponent(): Component {
  return {
    name: 'docker',
    async up() {
      const dockerd = which('dockerd');
      if (!dockerd) throw new Error('dockerd not found: install Debian docker.io (scripts/setup.sh does)');
      const d = ensureDir('docker');
      if (!running('dockerd')) {
        rmSync(dockerSocket(), { force: true });
        startDaemon('dockerd', dockerd, [
          '--iptables=false',
          '--ip6tables=false',
          '--bridge=none',
          '--storage-driver=vfs',
          `--host=${dockerHost()}`,
          `--data-root=${path.join(d, 'data')}`,
          `--exec-root=${path.join(d, 'exec')}`,
          `--pidfile=${path.join(d, 'docker.pid')}`,
          `--insecure-registry=${registryHost()}`,
        ]);
      }
      await waitReady('docker engine', engineReady, 60_000, 'dockerd');
      ensureBaseImage();
      const r = ensureDir('registry');
      const cfg = path.join(r, 'config.yml');
      writeFileSync(
        cfg,
        [
          'version: 0.1',
          'log:',
          '  level: warn',
          'storage:',
          '  filesystem:',
          `    rootdirectory: ${path.join(r, 'data')}`,
          '  delete:',
          '    enabled: true',
          'http:',
          `  addr: ${registryHost()}`,
          '',
        ].join('\n'),
      );
      if (!running('registry'))
        startDaemon('registry', which('docker-registry') ?? '/usr/bin/docker-registry', ['serve', cfg]);
      await waitReady('registry', registryReady, 30_000, 'registry');
      return `engine ${docker(['version', '--format', '{{.Server.Version}}']).trim()} at ${dockerHost()}, registry http://${registryHost()}`;
    },
    async status() {
      const engine = running('dockerd') && (await engineReady());
      const reg = running('registry') && (await registryReady().catch(() => false));
      return {
        ok: engine && reg,
        detail: `engine ${engine ? 'up' : 'down'}, registry ${reg ? `http://${registryHost()}` : 'down'}`,
      };
    },
    async down() {
      await stopDaemon('registry');
      await stopDaemon('dockerd', 30_000);
    },
    env() {
      return { DOCKER_HOST: dockerHost(), REGISTRY: registryHost() };
    },
  };
}
