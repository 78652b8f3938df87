// Starts a real local cluster with `damselfly up` and waits for its cluster.json.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stateFile, type ClusterFile } from './cluster';

export default async function globalSetup() {
  const repo = path.resolve(__dirname, '..');
  const bin = path.join(repo, 'target', 'debug', 'damselfly');
  if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: run \`make build\` first`);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'damselfly-e2e-'));
  const log = fs.openSync(path.join(dataDir, 'launcher.log'), 'w');
  const launcher = spawn(bin, ['up', '--peers', '1', '--data-dir', dataDir], {
    stdio: ['ignore', log, log],
    env: { ...process.env, DAMSELFLY_ROOT_PASSWORD: 'e2e-root-password' },
    detached: false,
  });
  const clusterJson = path.join(dataDir, 'cluster.json');
  const deadline = Date.now() + 90_000;
  while (!fs.existsSync(clusterJson)) {
    if (launcher.exitCode !== null) {
      throw new Error(`damselfly up exited early:\n${fs.readFileSync(path.join(dataDir, 'launcher.log'), 'utf8')}`);
    }
    if (Date.now() > deadline) throw new Error('cluster did not come up in 90 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  const cluster: ClusterFile = JSON.parse(fs.readFileSync(clusterJson, 'utf8'));
  fs.writeFileSync(stateFile, JSON.stringify({ launcherPid: launcher.pid, dataDir, cluster }));
  launcher.unref();
}
