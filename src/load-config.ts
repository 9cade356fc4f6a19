/** Reads and validates deploy.config.yaml on the worker's side (I/O lives here, rules in domain/config). */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError, parseConfig, type DeployConfig } from './domain/config';

export const DEFAULT_CONFIG_FILE = 'deploy.config.yaml';

export function configFilePath(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.DEPLOY_CONFIG ?? DEFAULT_CONFIG_FILE);
}

export function loadConfig(file = configFilePath(), env: NodeJS.ProcessEnv = process.env): DeployConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `${file}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); set DEPLOY_CONFIG to its path`,
    );
  }
  let raw: unknown;
  try {
    raw = parseYaml(text, { prettyErrors: true });
  } catch (err) {
    throw new ConfigError(`${file}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  return parseConfig(raw, file, env);
}
