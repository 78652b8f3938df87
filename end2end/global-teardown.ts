// Stops the cluster the way a person would (SIGINT, like Ctrl-C) and checks nothing is left.
import * as fs from 'node:fs';
import { readState, stateFile } from './cluster';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export default async function globalTeardown() {
  if (!fs.existsSync(stateFile)) return;
  const { launcherPid, cluster } = readState();
  process.kill(launcherPid, 'SIGINT');
  const pids = [launcherPid, ...cluster.peers.map((p) => p.pid)];
  const deadline = Date.now() + 30_000;
  while (pids.some(alive)) {
    if (Date.now() > deadline) {
      pids.filter(alive).forEach((p) => process.kill(p, 'SIGKILL'));
      throw new Error(`processes still running 30 s after SIGINT: ${pids.filter(alive).join(', ')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  fs.rmSync(stateFile);
}
