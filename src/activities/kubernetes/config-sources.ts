/**
 * The content of a ConfigMap as the release repository has it at a commit: a
 * file is one key (its basename), a directory one key per regular file
 * directly in it. Text that is valid UTF-8 goes to `data`, anything else to
 * `binaryData` (base64), as `kubectl create configmap --from-file` does.
 */
import { lstat, readdir, readFile, realpath } from 'node:fs/promises';
import * as path from 'node:path';
import type { ConfigContent } from '../../domain/config-snapshots';
import { repoPath } from '../../domain/config-fields';
import { fail } from '../failures';

/** ConfigMap keys as the apiserver accepts them. */
const KEY_RE = /^[-._a-zA-Z0-9]{1,253}$/;

const utf8 = new TextDecoder('utf-8', { fatal: true });

function put(content: Required<ConfigContent>, key: string, bytes: Buffer): void {
  try {
    content.data[key] = utf8.decode(bytes);
  } catch {
    content.binaryData[key] = bytes.toString('base64');
  }
}

/**
 * Reads `relative` inside `root` (the release checkout at the commit).
 * `what` names the ConfigMap and the Deployment in every failure. Symbolic
 * links are refused, as is anything that would resolve outside the checkout:
 * the files become configuration the cluster runs with.
 */
export async function readConfigSource(root: string, relative: string, what: string): Promise<ConfigContent> {
  if (!repoPath.safeParse(relative).success)
    throw fail.ConfigInvalid(`${what}: path ${JSON.stringify(relative)} is not a relative path inside the repository`);
  const realRoot = await realpath(root);
  const full = path.join(realRoot, ...relative.split('/'));
  const st = await lstat(full).catch(() => undefined);
  if (!st) throw fail.ConfigInvalid(`${what}: ${relative} does not exist in the release repository at this commit`);
  if (st.isSymbolicLink()) throw fail.ConfigInvalid(`${what}: ${relative} is a symbolic link; name the file itself`);
  // A parent directory that is a link could still lead outside.
  const resolved = await realpath(full);
  if (resolved !== realRoot && !resolved.startsWith(realRoot + path.sep))
    throw fail.ConfigInvalid(`${what}: ${relative} leads outside the release repository`);
  const content: Required<ConfigContent> = { data: {}, binaryData: {} };
  const files: [string, string][] = [];
  if (st.isFile()) files.push([path.basename(full), full]);
  else if (st.isDirectory()) {
    for (const entry of await readdir(full, { withFileTypes: true })) {
      // Only regular files directly in it: subdirectories and links are not keys.
      if (entry.isFile()) files.push([entry.name, path.join(full, entry.name)]);
    }
    if (!files.length) throw fail.ConfigInvalid(`${what}: directory ${relative} has no regular files`);
  } else throw fail.ConfigInvalid(`${what}: ${relative} is neither a file nor a directory`);
  for (const [key, file] of files) {
    if (!KEY_RE.test(key))
      throw fail.ConfigInvalid(`${what}: ${JSON.stringify(key)} in ${relative} is not a valid ConfigMap key`);
    put(content, key, await readFile(file));
  }
  return content;
}
