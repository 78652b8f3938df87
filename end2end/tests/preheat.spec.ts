// Preheat from the console: the form with the API's messages by their fields, then a job page
// that follows the preheat live to its outcome on every host, against an origin this test serves;
// a registry password never shows in a URL or an answer.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, expect, signIn, apiToken, ROOT } from './fixtures';
import { readState } from '../cluster';

const shot = (name: string) => ({ path: `test-results/${name}.png`, fullPage: true });

/**
 * An origin on loopback: `/file-*.bin` is 3 MiB of content, sent after 8 s (so the job page is
 * seen while the preheat runs, every host still pending), anything else a 404 at once.
 */
async function origin(): Promise<{ base: string; close: () => void }> {
  const body = Buffer.alloc(3 * 1024 * 1024 + 17, 42);
  const server = http.createServer((req, res) => {
    if (!req.url?.startsWith('/file-')) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      return res.end('no such file');
    }
    setTimeout(() => {
      res.writeHead(200, { 'content-length': String(body.length), 'content-type': 'application/octet-stream' });
      res.end(req.method === 'HEAD' ? undefined : body);
    }, 8_000);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() };
}

/** Opens the preheat form from the jobs page and chooses a file preheat on the default cluster. */
async function openForm(page: import('@playwright/test').Page) {
  await signIn(page, ROOT, '/jobs');
  await page.getByRole('link', { name: 'Preheat' }).click();
  await page.waitForURL('**/jobs/preheat');
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true', { timeout: 20_000 });
  await page.getByLabel('Type').selectOption('file');
  // The platform is for images only.
  await expect(page.getByLabel('Platform (os/arch[/variant])')).toBeHidden();
  await page.getByRole('checkbox', { name: 'default', exact: true }).check();
}

test('a file preheat from the form: field errors first, then every host warmed, followed live', async ({ page, consoleErrors }) => {
  test.setTimeout(120_000);
  const { cluster } = readState();
  const served = await origin();
  try {
    await openForm(page);
    const urls = page.getByLabel('URLs, one per line');
    const url = `${served.base}/file-${Date.now()}.bin`;
    await urls.fill(url);
    await page.getByLabel('Hosts', { exact: true }).selectOption('all_peers');
    await page.getByLabel('Percentage of hosts (1–100)').fill('0');
    await page.getByRole('button', { name: 'Preheat', exact: true }).click();
    // The API's message by the field it names; nothing is created.
    await expect(page.locator('.field-error[data-field="percentage"]')).toContainText('1-100');
    await expect(page).toHaveURL(/\/jobs\/preheat$/);
    await page.screenshot(shot('preheat-form-error'));

    await page.getByLabel('Percentage of hosts (1–100)').fill('');
    await urls.fill(`${url}\nnot a url`);
    await page.getByRole('button', { name: 'Preheat', exact: true }).click();
    await expect(page.locator('.field-error[data-field="urls"]')).toContainText('line 2');
    await expect(page.locator('.field-error[data-field="percentage"]')).toHaveCount(0);

    await urls.fill(url);
    await page.getByRole('button', { name: 'Preheat', exact: true }).click();
    await page.waitForURL(/\/jobs\/\d+$/);
    await expect(page.getByRole('heading', { name: /Job #\d+ · preheat/ })).toBeVisible();
    // No reload from here on: the page follows the job until it ends.
    await expect(page.locator('#job-state')).toContainText(/PENDING|RUNNING/);
    await expect(page.getByText('this page follows it')).toBeVisible();
    // While the origin holds back, every host the preheat picked shows, none done yet.
    const pending = page.locator('.host-progress tr[data-state="pending"]');
    await expect(pending).toHaveCount(cluster.peers.length, { timeout: 15_000 });
    await expect(pending.first()).toContainText('0 / 1');
    await expect(page.locator('#job-state')).toContainText('SUCCESS', { timeout: 90_000 });
    const result = page.locator('.cluster-result');
    await expect(result.locator('.preheat-progress')).toHaveAttribute('data-finished', String(cluster.peers.length));
    // 3 MiB on each host.
    await expect(result.locator('.preheat-progress')).toContainText(`${3 * cluster.peers.length}.0 MiB`);
    for (const peer of cluster.peers) {
      await expect(result.locator(`tr[data-host="${peer.name}"]`)).toHaveAttribute('data-state', 'SUCCESS');
    }
    await expect(page.locator('#job-error')).toHaveCount(0);
    await page.screenshot(shot('preheat-job'));

    await page.goto('/jobs?type=preheat');
    await expect(page.locator('#jobs-table')).toContainText(url);
  } finally {
    served.close();
  }
});

test('a preheat whose origin answers 404 fails, with the reason on the job page', async ({ page, consoleErrors }) => {
  test.setTimeout(120_000);
  const served = await origin();
  try {
    await openForm(page);
    const url = `${served.base}/missing-${Date.now()}.bin`;
    await page.getByLabel('URLs, one per line').fill(url);
    await page.getByRole('button', { name: 'Preheat', exact: true }).click();
    await page.waitForURL(/\/jobs\/\d+$/);
    await expect(page.locator('#job-state')).toContainText('FAILURE', { timeout: 90_000 });
    await expect(page.locator('#job-error')).toContainText(url);
    const failed = page.locator('.cluster-result tr[data-state="FAILURE"]');
    await expect(failed).toHaveCount(1);
    await expect(failed).toContainText('404');
    await page.screenshot(shot('preheat-failure'));
  } finally {
    served.close();
  }
});

test("an image preheat's registry password stays out of every URL and answer", async ({ page, consoleErrors, request }) => {
  test.setTimeout(120_000);
  const password = `pw-${Date.now()}`;
  const seen: string[] = [];
  page.on('request', (r) => seen.push(r.url()));
  page.on('response', async (r) => {
    if (r.url().includes('/console/fn/')) seen.push(await r.text().catch(() => ''));
  });
  await signIn(page, ROOT, '/jobs/preheat');
  await expect(page.getByLabel('Platform (os/arch[/variant])')).toHaveValue('linux/amd64');
  const url = page.getByLabel(/^Manifest URL/);
  // A blob URL is not a manifest URL: the API says so by the field.
  await url.fill('http://127.0.0.1:9/v2/library/app/blobs/sha256:00');
  await page.getByLabel('Registry user name').fill('puller');
  await page.getByLabel('Registry password').fill(password);
  // Other specs may have made root a member of more tenants: name the cluster.
  await page.getByRole('checkbox', { name: 'default', exact: true }).check();
  await page.getByRole('button', { name: 'Preheat', exact: true }).click();
  await expect(page.locator('.field-error[data-field="urls"]')).toContainText('manifest URL');

  // A registry that is not there: the job is created, then fails as a whole with the reason.
  await url.fill('http://127.0.0.1:9/v2/library/app/manifests/1.0');
  await page.getByRole('button', { name: 'Preheat', exact: true }).click();
  await page.waitForURL(/\/jobs\/\d+$/);
  await expect(page.locator('#job-state')).toContainText('FAILURE', { timeout: 60_000 });
  await expect(page.locator('#job-error')).not.toBeEmpty();
  const id = page.url().split('/').pop();
  const token = await apiToken(request);
  const job = await (await request.get(`/api/v1/jobs/${id}`, { headers: { authorization: `Bearer ${token}` } })).json();
  expect(job.args.username).toBe('puller');
  expect(job.args.password).toBe('******');
  expect(seen.filter((s) => s.includes(password))).toEqual([]);
  expect(await page.content()).not.toContain(password);
});
