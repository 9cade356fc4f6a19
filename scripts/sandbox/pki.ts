/**
 * One cluster's credentials, made once: its own CA, the apiserver's serving
 * certificate (for 127.0.0.1, also served by kwok's kubelet server), the
 * service-account signing key pair and the admin token. Each cluster has its
 * own, as two real clusters do: a token or certificate of one is refused by
 * the other.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { sh } from './common';

export interface ClusterPki {
  ca: string;
  cert: string;
  key: string;
  saKey: string;
  saPub: string;
  tokens: string;
  adminToken: string;
}

/** The files in `dir`, made there the first time; `cluster` names its CA. */
export function ensurePki(dir: string, cluster: string): ClusterPki {
  const f = (n: string) => path.join(dir, n);
  // Run in `dir` with its file names, so a SANDBOX_DIR with spaces needs no quoting.
  const openssl = (args: string) => sh('openssl', args.split(' '), { cwd: dir });
  if (!existsSync(f('apiserver.crt'))) {
    openssl(`req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=${cluster}-ca -keyout ca.key -out ca.crt`);
    writeFileSync(
      f('san.cnf'),
      [
        '[ext]',
        'subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc',
        'extendedKeyUsage=serverAuth',
        '',
      ].join('\n'),
    );
    openssl('req -newkey rsa:2048 -nodes -subj /CN=kube-apiserver -keyout apiserver.key -out apiserver.csr');
    openssl(
      'x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile san.cnf -extensions ext -out apiserver.crt',
    );
    openssl('genrsa -out sa.key 2048');
    openssl('rsa -in sa.key -pubout -out sa.pub');
    const token = openssl('rand -hex 24').trim();
    writeFileSync(f('tokens.csv'), `${token},sandbox-admin,sandbox-admin,"system:masters"\n`, { mode: 0o600 });
  }
  return {
    ca: f('ca.crt'),
    cert: f('apiserver.crt'),
    key: f('apiserver.key'),
    saKey: f('sa.key'),
    saPub: f('sa.pub'),
    tokens: f('tokens.csv'),
    adminToken: readFileSync(f('tokens.csv'), 'utf8').split(',')[0],
  };
}
