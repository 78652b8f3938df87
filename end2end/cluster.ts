// Where the end-to-end cluster lives, shared by setup, teardown and fixtures.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

// One file per checkout, so two checkouts' suites (a developer's and CI's) never share a cluster.
const checkout = createHash('sha256').update(path.resolve(__dirname)).digest('hex').slice(0, 12);
export const stateFile = path.join(os.tmpdir(), `damselfly-e2e-state-${checkout}.json`);

export interface ClusterFile {
  manager: { http: string; grpc: string };
  scheduler: { grpc: string; http: string };
  peers: { name: string; seed: boolean; endpoint: string; upload: string; http: string; pid: number }[];
}

export interface E2eState {
  launcherPid: number;
  dataDir: string;
  cluster: ClusterFile;
}

export function readState(): E2eState {
  return JSON.parse(fs.readFileSync(stateFile, 'utf8'));
}
