// The console against the real stack `damselfly up` started: sign-in, clusters, tokens, task
// clear and tenant isolation, driven as an operator would, with screenshots of the main pages.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { test, expect, signIn, apiToken, ROOT } from './fixtures';
import { readState } from '../cluster';

const shot = (name: string) => ({ path: `test-results/${name}.png`, fullPage: true });

test('signed-out visits go to sign-in and come back; wrong passwords are told', async ({ page, consoleErrors }) => {
  const resp = await page.request.get('/clusters?name=x', { maxRedirects: 0 });
  expect(resp.status()).toBe(303);
  expect(resp.headers()['location']).toBe('/signin?return_to=%2Fclusters%3Fname%3Dx');

  await page.goto('/clusters?name=x');
  await expect(page).toHaveURL(/\/signin\?return_to=/);
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true', { timeout: 20_000 });
  await page.screenshot(shot('signin'));
  await page.getByLabel('User name').fill(ROOT.name);
  await page.getByLabel('Password').fill('not-the-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.locator('.field-error[data-field="password"]')).toContainText(/password/i);

  await page.getByLabel('Password').fill(ROOT.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL('**/clusters?name=x');
  await expect(page.locator('#filter-name')).toHaveValue('x');
  await expect(page.getByText('No cluster has that name.')).toBeVisible();

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL('**/signin');
  const after = await page.request.get('/clusters', { maxRedirects: 0 });
  expect(after.status()).toBe(303);
});

test('the overview counts what is running', async ({ page, consoleErrors }) => {
  await signIn(page);
  await expect(page.getByRole('heading', { name: 'Overview' })).toBeVisible();
  // damselfly up: one scheduler, one seed peer, one peer, all registered and alive.
  await expect(page.locator('#stat-schedulers .stat-value')).toContainText('1');
  await expect(page.locator('#stat-seed-peers .stat-value')).toContainText('1');
  // Tasks and traffic over time, with the window in the URL.
  await expect(page.locator('#chart-traffic svg')).toBeVisible();
  await expect(page.locator('#chart-tasks svg')).toBeVisible();
  await expect(page.locator('#activity-summary')).toContainText('In this window:');
  await page.getByRole('link', { name: '24h' }).click();
  await page.waitForURL('**/?window=24h');
  await expect(page.getByRole('link', { name: '24h' })).toHaveAttribute('aria-current', 'true');
  await page.screenshot(shot('overview'));
});

test('clusters: create with field errors, see it, edit it, delete it', async ({ page, consoleErrors }) => {
  await signIn(page, ROOT, '/clusters');
  await page.getByRole('link', { name: 'New cluster' }).click();
  await page.waitForURL('**/clusters/new');
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true', { timeout: 20_000 });
  const name = `edge-${Date.now()}`;
  await page.getByLabel('Name', { exact: true }).fill(name);
  await page.getByLabel('IDC').fill('idc-a');
  await page.getByLabel('CIDRs, one per line').fill('10.0.0.0/8\nnot-a-cidr');
  await page.getByLabel('Tags, one per line').fill('secret');
  await page.getByRole('button', { name: 'Create cluster' }).click();
  // The API's message shows next to the field it is about, and nothing was created.
  await expect(page.locator('.field-error[data-field="cidrs"]')).toContainText('not a CIDR');
  await page.screenshot(shot('cluster-form-error'));

  await page.getByLabel('CIDRs, one per line').fill('10.0.0.0/8');
  await page.getByRole('button', { name: 'Create cluster' }).click();
  await page.waitForURL(/\/clusters\/\d+$/);
  await expect(page.getByRole('heading', { name })).toBeVisible();
  await expect(page.locator('.facts')).toContainText('10.0.0.0/8');
  await expect(page.locator('.facts')).toContainText('secret');
  await expect(page.getByText('No scheduler has registered with this cluster yet.', { exact: false })).toBeVisible();
  const clusterUrl = page.url();

  await page.getByRole('link', { name: 'Edit' }).click();
  await page.waitForURL(/\/edit$/);
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true', { timeout: 20_000 });
  await page.getByLabel('Candidate parents per peer (1–20)').fill('7');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await page.waitForURL(clusterUrl);
  await expect(page.locator('.facts')).toContainText('7 / 40');

  await page.goto('/clusters');
  await expect(page.locator('#clusters-table')).toContainText(name);
  await page.screenshot(shot('clusters'));

  await page.goto(clusterUrl);
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true', { timeout: 20_000 });
  page.once('dialog', (d) => d.accept());
  await page.locator('#delete-cluster').click();
  await page.waitForURL('**/clusters');
  await expect(page.locator('#clusters-table')).not.toContainText(name);
});

test('the default cluster shows its scheduler and seed peer alive', async ({ page, consoleErrors }) => {
  await signIn(page, ROOT, '/clusters/1');
  await expect(page.locator('#schedulers-table')).toContainText('active');
  await expect(page.locator('#seed-peers-table')).toContainText('active');
  await page.screenshot(shot('cluster-detail'));
});

test('personal access tokens: shown once, work on /oapi/v1, revoked at once', async ({ page, consoleErrors, request }) => {
  await signIn(page, ROOT, '/tokens');
  const name = `ci-${Date.now()}`;
  await page.getByLabel('Name').fill(name);
  await page.getByLabel('cluster (read and manage clusters)').check();
  await page.getByRole('button', { name: 'Create token' }).click();
  const secret = (await page.locator('#token-secret').textContent())!.trim();
  expect(secret).toMatch(/^dfly_pat_/);
  await page.locator('#copy-token').click();
  await expect(page.locator('#copy-token')).toHaveText('Copied');
  await expect(page.locator(`tr[data-token="${name}"]`)).toContainText('active');
  await page.screenshot(shot('tokens'));

  const ok = await request.get('/oapi/v1/clusters', { headers: { authorization: `Bearer ${secret}` } });
  expect(ok.status()).toBe(200);

  // Reloading never shows the secret again.
  await page.reload();
  await expect(page.locator('#token-secret')).toHaveCount(0);
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true', { timeout: 20_000 });
  await page.locator(`tr[data-token="${name}"]`).getByRole('button', { name: 'Revoke' }).click();
  await expect(page.locator(`tr[data-token="${name}"]`)).toHaveCount(0);
  const gone = await request.get('/oapi/v1/clusters', { headers: { authorization: `Bearer ${secret}` } });
  expect(gone.status()).toBe(401);
});

test('task clear: a downloaded file is found on its peers, then deleted from them', async ({ page, consoleErrors }) => {
  const { cluster } = readState();
  const peer = cluster.peers.find((p) => !p.seed)!;
  // A real download through a peer, from a real origin: the manager's own stylesheet.
  const url = `${cluster.manager.http}/pkg/console.css?e2e=${Date.now()}`;
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dfget-')), 'console.css');
  const dfget = path.resolve(__dirname, '..', '..', 'target', 'debug', 'dfget');
  execFileSync(dfget, [url, '-O', out, '-e', peer.endpoint, '--no-progress'], { timeout: 60_000 });
  expect(fs.statSync(out).size).toBeGreaterThan(0);

  await signIn(page, ROOT, '/jobs/task-clear');
  await page.getByLabel('URL or task id').fill(url);
  // The default cluster: the one `damselfly up` registers its scheduler and peers with.
  await page.getByLabel('Cluster').selectOption({ label: 'default' });
  await page.getByRole('button', { name: 'Find' }).click();
  const found = page.locator('.cluster-result');
  await expect(found.locator('.task-peers tbody tr').first()).toBeVisible({ timeout: 20_000 });
  await expect(page.locator('#job-state')).toContainText('SUCCESS');
  await page.screenshot(shot('task-clear'));

  // The task's graph: the origin, the peers, who fetched from whom, traffic by source.
  const graphUrl = await found.locator('a.task-graph-link').first().getAttribute('href');
  await page.goto(graphUrl!);
  await expect(page.locator('#task-graph g[data-kind="origin"]')).toHaveCount(1);
  await expect(page.locator(`#task-graph g[data-kind="peer"][data-hostname="${peer.name}"]`)).toHaveAttribute(
    'data-state',
    'succeeded',
  );
  await expect(page.locator('#task-graph g.edge-group').first()).toBeVisible();
  await expect(page.locator('#graph-state')).toHaveText('Every peer has finished.');
  await expect(page.locator('#traffic-origin')).not.toHaveText('0 B');
  await page.screenshot(shot('task-graph'));

  await page.goto('/jobs/task-clear');
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true', { timeout: 20_000 });
  await page.getByLabel('URL or task id').fill(url);
  await page.getByLabel('Cluster').selectOption({ label: 'default' });
  await page.getByRole('button', { name: 'Delete' }).click();
  await expect(page.getByText(/Deleted from [1-9]\d* host\(s\)/)).toBeVisible({ timeout: 20_000 });

  // Afterwards nobody holds it.
  await page.getByRole('button', { name: 'Find' }).click();
  await expect(page.getByText('No peer in this cluster holds the task.')).toBeVisible({ timeout: 20_000 });

  await page.goto('/jobs?type=delete_task');
  await expect(page.locator('#jobs-table')).toContainText('delete_task');
  await page.screenshot(shot('jobs'));
  // Filtered by cluster too, in the URL.
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true', { timeout: 20_000 });
  await page.locator('#filter-cluster').selectOption({ label: 'default' });
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL(/cluster_id=\d+/);
  await expect(page.locator('#jobs-table')).toContainText('delete_task');
});

test('task graph: a running download is followed live as its pieces arrive', async ({ page, consoleErrors, request }) => {
  const { cluster } = readState();
  const peer = cluster.peers.find((p) => !p.seed)!;
  // A slow origin: 16 MiB (four 4 MiB pieces) at about 2 MiB/s, so there is time to watch.
  const size = 16 * 1024 * 1024;
  const chunk = Buffer.alloc(128 * 1024, 7);
  const origin = http.createServer((req, res) => {
    res.writeHead(200, { 'content-length': String(size), 'content-type': 'application/octet-stream' });
    if (req.method === 'HEAD') return res.end();
    let sent = 0;
    const timer = setInterval(() => {
      if (sent >= size) {
        clearInterval(timer);
        return res.end();
      }
      res.write(chunk);
      sent += chunk.length;
    }, 60);
    res.on('close', () => clearInterval(timer));
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  try {
    const url = `http://127.0.0.1:${(origin.address() as AddressInfo).port}/slow-${Date.now()}.bin`;
    const token = await apiToken(request);
    const listed = await request.get('/api/v1/clusters?name=default', { headers: { authorization: `Bearer ${token}` } });
    const clusterId = (await listed.json())[0].id;
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dfget-')), 'slow.bin');
    const dfget = path.resolve(__dirname, '..', '..', 'target', 'debug', 'dfget');
    const download = spawn(dfget, [url, '-O', out, '-e', peer.endpoint, '--no-progress'], { stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => download.on('exit', resolve));

    await signIn(page);
    // The task exists once the peer registered it; until then the page says it is not found.
    const graphPath = `/tasks?cluster=${clusterId}&task=${encodeURIComponent(url)}`;
    consoleErrors.expectErrorFrom(graphPath);
    await expect(async () => {
      await page.goto(graphPath);
      await expect(page.locator('#task-graph')).toBeVisible({ timeout: 1_000 });
    }).toPass({ timeout: 20_000 });
    await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true', { timeout: 20_000 });
    await expect(page.locator('#graph-state')).toHaveText('Downloading: following it live.');
    await page.screenshot(shot('task-graph-live'));

    // Without reloading, the peer's finished pieces climb to all four and the page says so.
    const finished = page.locator(`#task-graph g[data-kind="peer"][data-hostname="${peer.name}"]`);
    const seen = new Set<string>();
    await expect
      .poll(
        async () => {
          const v = (await finished.count()) ? await finished.getAttribute('data-finished') : null;
          if (v !== null) seen.add(v);
          return v;
        },
        { timeout: 60_000, intervals: [200] },
      )
      .toBe('4');
    expect(seen.size, `progress seen: ${[...seen].join(', ')}`).toBeGreaterThan(1);
    await expect(page.locator('#graph-state')).toHaveText('Every peer has finished.', { timeout: 10_000 });
    await expect(page.locator('#traffic-origin')).toHaveText('16.0 MiB');
    expect(await exited).toBe(0);
    expect(fs.statSync(out).size).toBe(size);

    // The overview's traffic over the last hour includes it once the scheduler's next sample is
    // kept (every 10 s on a `damselfly up` cluster).
    await expect(async () => {
      await page.goto('/?window=1h');
      await expect(page.locator('#activity-summary')).toContainText(/[1-9][\d.]* MiB from the origin/, { timeout: 1_000 });
    }).toPass({ timeout: 40_000 });
    await expect(page.locator('#chart-traffic path.area.origin')).toHaveCount(1);
    await page.screenshot(shot('overview-traffic'));

    // The Tasks page lists the cluster's recent tasks (recorded from the scheduler's keepalives);
    // the download is there, a link to its graph.
    // The record follows the scheduler's keepalives (every 5 s): it ends succeeded, 2 of 2 done.
    const row = page.locator('#recent-tasks tbody tr', { hasText: url });
    await expect(async () => {
      await page.goto('/tasks');
      await expect(row).toContainText('2 / 2', { timeout: 1_000 });
    }).toPass({ timeout: 30_000 });
    await expect(row).toContainText('succeeded');
    await page.screenshot(shot('recent-tasks'));
    await row.getByRole('link').click();
    await expect(page.locator('#graph-state')).toHaveText('Every peer has finished.');
    await expect(page.locator(`#task-graph g[data-kind="peer"][data-hostname="${peer.name}"]`)).toHaveAttribute(
      'data-finished',
      '4',
    );
  } finally {
    origin.close();
  }
});

test("a tenant's user sees only its own tenant's clusters", async ({ page, consoleErrors, request }) => {
  const who = { name: `tenant-user-${Date.now()}`, password: 'other-tenant-password' };
  expect((await request.post('/api/v1/users/signup', { data: who })).status()).toBe(201);
  const token = await apiToken(request, who);
  const auth = { authorization: `Bearer ${token}` };
  const tenant = await request.post('/api/v1/tenants', { headers: auth, data: { name: `${who.name}-t` } });
  expect(tenant.status()).toBe(201);
  const mine = await request.post('/api/v1/clusters', {
    headers: auth,
    data: { name: `${who.name}-cluster`, tenant_id: (await tenant.json()).id },
  });
  expect(mine.status()).toBe(201);

  await signIn(page, who, '/clusters');
  await expect(page.locator('#clusters-table')).toContainText(`${who.name}-cluster`);
  await expect(page.locator('#clusters-table tbody tr')).toHaveCount(1);
  // The default tenant's cluster does not exist as far as this user can tell.
  consoleErrors.expectErrorFrom('/clusters/1');
  const resp = await page.goto('/clusters/1');
  expect(resp?.status()).toBe(404);
  await expect(page.getByRole('alert')).toContainText(/not found|no such/i);
});

test('topology: a scheduler that starts shows up active, live, and turns inactive when it stops', async ({ page, consoleErrors, request }) => {
  const token = await apiToken(request);
  const created = await request.post('/api/v1/clusters', {
    headers: { authorization: `Bearer ${token}` },
    data: { name: `topo-${Date.now()}` },
  });
  expect(created.status()).toBe(201);
  const clusterId: number = (await created.json()).id;

  await signIn(page, ROOT, `/topology?cluster=${clusterId}`);
  await expect(page.locator('#live-state')).toHaveText('live');
  await expect(page.locator('#topology-cluster option:checked')).toHaveText(/^topo-/);
  const node = page.locator('#topology-graph g[data-kind="scheduler"]');
  await expect(node).toHaveCount(0);

  // A real scheduler process joins this cluster, enrolling with a join token of it (gRPC is
  // mutual TLS); the open page learns of it without a reload.
  const joined = await request.post(`/api/v1/clusters/${clusterId}/join-tokens`, {
    headers: { authorization: `Bearer ${token}` },
    data: { role: 'scheduler', name: 'e2e scheduler', max_uses: 1 },
  });
  expect(joined.status()).toBe(201);
  const joinToken: string = (await joined.json()).token;
  const { cluster } = readState();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'e2e-scheduler-'));
  const hostname = `e2e-scheduler-${clusterId}`;
  fs.writeFileSync(
    path.join(dir, 'scheduler.toml'),
    `[host]\nhostname = "${hostname}"\n\n[manager]\naddr = "${cluster.manager.grpc}"\ncluster_id = ${clusterId}\nkeepalive_interval_secs = 1\n`,
  );
  const bin = path.resolve(__dirname, '..', '..', 'target', 'debug', 'scheduler');
  const scheduler = spawn(
    bin,
    ['-c', path.join(dir, 'scheduler.toml'), '--grpc-addr', '127.0.0.1:0', '--http-addr', '127.0.0.1:0', '--tls-dir', path.join(dir, 'tls')],
    { stdio: 'ignore', env: { ...process.env, DAMSELFLY_JOIN_TOKEN: joinToken } },
  );
  try {
    const drawn = page.locator(`#topology-graph g[data-kind="scheduler"][data-hostname="${hostname}"]`);
    await expect(drawn).toHaveAttribute('data-state', 'active', { timeout: 20_000 });
    await page.screenshot(shot('topology'));
  } finally {
    scheduler.kill('SIGTERM');
  }
  // Its stream ends with it, and the drawing follows.
  await expect(page.locator(`#topology-graph g[data-hostname="${hostname}"]`)).toHaveAttribute('data-state', 'inactive', {
    timeout: 20_000,
  });
});
