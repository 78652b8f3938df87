// People, audit and peers pages: users (platform roots), tenants and their members, the roles
// matrix, the audit log, and peers insight. Root signs in through the form; other users and
// tenants are set up through the API with unique names, so the specs can run again on the
// same cluster.
import type { APIRequestContext, Page } from '@playwright/test';
import { test, expect, signIn, apiToken, ROOT } from './fixtures';

const PASSWORD = 'e2e-people-password';
const unique = (prefix: string) => `${prefix}-${Date.now().toString(36)}${Math.floor(Math.random() * 1000)}`;

async function signUp(request: APIRequestContext, name: string): Promise<{ id: number; name: string }> {
  const resp = await request.post('/api/v1/users/signup', {
    data: { name, password: PASSWORD, email: `${name}@example.com` },
  });
  expect(resp.status(), `sign up ${name}`).toBe(201);
  return resp.json();
}

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

async function createTenant(request: APIRequestContext, token: string, name: string): Promise<{ id: number }> {
  const resp = await request.post('/api/v1/tenants', { headers: bearer(token), data: { name, bio: 'made by people.spec' } });
  expect(resp.status(), `create tenant ${name}`).toBe(201);
  return resp.json();
}

/**
 * Runs `act`, which makes server function `fn` answer an error (Leptos sends it with HTTP 500,
 * the API's error as JSON). The browser logs that failed call; the test declares it expected.
 * Server function URLs end in a build hash, so the path is taken from the response.
 */
async function expectFailedCall(
  page: Page,
  consoleErrors: { expectErrorFrom(path: string): void },
  fn: string,
  act: () => Promise<void>,
) {
  const [resp] = await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname.startsWith(`/console/fn/${fn}`)),
    act(),
  ]);
  expect(resp.ok(), `${fn} answers an error`).toBeFalsy();
  consoleErrors.expectErrorFrom(new URL(resp.url()).pathname);
}

/** Runs `act` and waits until server function `fn` has answered (a list the page reloads). */
async function answered(page: Page, fn: string, act: () => Promise<void>) {
  await Promise.all([page.waitForResponse((r) => new URL(r.url()).pathname.startsWith(`/console/fn/${fn}`)), act()]);
}

async function hydrated(page: Page) {
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true', { timeout: 20_000 });
}

test('root lists users, disables and enables one, and makes it root and back', async ({ page, request, consoleErrors }) => {
  const alice = await signUp(request, unique('alice'));
  await signIn(page, ROOT, '/users');
  await expect(page.locator('#users-table')).toBeVisible();
  await expect(page.getByRole('link', { name: 'Users' })).toBeVisible();

  // Filters go into the URL.
  await page.getByLabel('Name').fill(alice.name);
  await answered(page, 'list_users', () => page.getByRole('button', { name: 'Filter' }).click());
  await page.waitForURL((url) => url.searchParams.get('name') === alice.name);
  const rows = page.locator('#users-table tbody tr');
  await expect(rows).toHaveCount(1);
  const row = page.locator(`#users-table tr[data-user="${alice.name}"]`);
  await expect(row.locator('.user-state')).toHaveText('enabled');
  await expect(row.locator('.user-role')).toHaveText('—');

  await row.getByRole('button', { name: 'Disable' }).click();
  await expect(row.locator('.user-state')).toHaveText('disabled');
  const refused = await request.post('/api/v1/users/signin', { data: { name: alice.name, password: PASSWORD } });
  expect(refused.status(), 'a disabled user cannot sign in').toBe(403);

  await row.getByRole('button', { name: 'Enable' }).click();
  await expect(row.locator('.user-state')).toHaveText('enabled');
  const allowed = await request.post('/api/v1/users/signin', { data: { name: alice.name, password: PASSWORD } });
  expect(allowed.status(), 'an enabled user signs in').toBe(200);

  page.once('dialog', (dialog) => dialog.accept());
  await row.getByRole('button', { name: 'Make root' }).click();
  await expect(row.locator('.user-role')).toHaveText('root');
  await row.getByRole('button', { name: 'Remove root' }).click();
  await expect(row.locator('.user-role')).toHaveText('—');

  // Root's own row offers no way to lock itself out.
  await page.goto(`/users?name=${ROOT.name}`);
  await expect(page.locator(`#users-table tr[data-user="${ROOT.name}"]`)).toContainText('you');
  await expect(page.locator(`#users-table tr[data-user="${ROOT.name}"] button`)).toHaveCount(0);

  // A state filter that excludes the user shows the empty state.
  await page.goto(`/users?name=${alice.name}&state=disabled`);
  await expect(page.locator('#filter-state')).toHaveValue('disabled');
  await expect(page.getByText('No user matches these filters')).toBeVisible();

  await page.goto('/users');
  await page.screenshot({ path: 'test-results/users.png', fullPage: true });
});

test('users who are not platform roots get the API refusal on /users', async ({ page, request, consoleErrors }) => {
  const bob = await signUp(request, unique('bob'));
  await signIn(page, { name: bob.name, password: PASSWORD }, '/tenants');
  await expect(page.getByText('You belong to no tenant yet')).toBeVisible();
  await expect(page.getByRole('link', { name: 'Users' })).toHaveCount(0);
  consoleErrors.expectErrorFrom('/users');
  const resp = await page.goto('/users');
  expect(resp?.status()).toBe(403);
  await expect(page.getByRole('alert')).toBeVisible();
  await expect(page.locator('#users-table')).toHaveCount(0);
});

test('a tenant is created, renamed, gets members with roles, loses one, and is deleted', async ({ page, request, consoleErrors }) => {
  const carol = await signUp(request, unique('carol'));
  const token = await apiToken(request);
  const name = unique('team');
  await signIn(page, ROOT, '/tenants');

  await page.getByLabel('Name', { exact: true }).fill(name);
  await page.getByLabel('Description').fill('Builds things');
  await page.locator('#create-tenant').click();
  await page.waitForURL(/\/tenants\/\d+$/);
  await hydrated(page);
  await expect(page.locator('#tenant-title')).toHaveText(name);
  const tenantId = Number(new URL(page.url()).pathname.split('/').pop());

  // The creator is the tenant's admin.
  const members = page.locator('#members-table');
  await expect(members.locator(`tr[data-member="${ROOT.name}"] select`)).toHaveValue('admin');

  // Add a member by name, as a guest.
  await page.getByLabel('User name').fill(carol.name);
  await page.locator('#member-role').selectOption('guest');
  await page.locator('#add-member').click();
  const carolRow = members.locator(`tr[data-member="${carol.name}"]`);
  await expect(carolRow.locator('select')).toHaveValue('guest');

  // An unknown user name is reported next to the field.
  await page.getByLabel('User name').fill(unique('nobody'));
  await expectFailedCall(page, consoleErrors, 'add_member', () => page.locator('#add-member').click());
  await expect(page.locator('.field-error[data-field="user_name"]')).toContainText('no user has this name');

  // Change the role from the row.
  await carolRow.getByLabel(`Role of ${carol.name}`).selectOption('member');
  await carolRow.getByRole('button', { name: 'Change' }).click();
  await expect
    .poll(async () => {
      const resp = await request.get(`/api/v1/tenants/${tenantId}/members`, { headers: bearer(token) });
      const list: { user_name: string; role: string }[] = await resp.json();
      return list.find((m) => m.user_name === carol.name)?.role;
    })
    .toBe('member');

  // The last admin cannot be demoted: the API's answer is shown.
  const rootRow = members.locator(`tr[data-member="${ROOT.name}"]`);
  await rootRow.getByLabel(`Role of ${ROOT.name}`).selectOption('guest');
  await expectFailedCall(page, consoleErrors, 'change_member_role', () =>
    rootRow.getByRole('button', { name: 'Change' }).click(),
  );
  await expect(page.getByRole('alert').filter({ hasText: 'at least one admin' })).toBeVisible();

  // Rename and describe.
  const renamed = `${name}-renamed`;
  await page.locator('#edit-tenant-name').fill(renamed);
  await page.locator('#edit-tenant-bio').fill('Builds more things');
  await page.locator('#save-tenant').click();
  await expect(page.locator('#tenant-title')).toHaveText(renamed);
  await page.screenshot({ path: 'test-results/tenant.png', fullPage: true });

  // Remove the member (after confirming).
  page.once('dialog', (dialog) => dialog.accept());
  await members.locator(`tr[data-member="${carol.name}"]`).getByRole('button', { name: 'Remove' }).click();
  await expect(members.locator(`tr[data-member="${carol.name}"]`)).toHaveCount(0);

  // The list shows the tenant with the user's role.
  // Tenants are listed oldest first: the new one is on the last page.
  await page.goto('/tenants');
  const last = (await page.locator('.pager').textContent())?.match(/of (\d+)/)?.[1] ?? '1';
  await page.goto(`/tenants?page=${last}`);
  await expect(page.locator(`#tenants-table tr[data-tenant="${renamed}"]`)).toContainText('admin');
  await page.screenshot({ path: 'test-results/tenants.png', fullPage: true });

  // Delete it (platform roots only), after confirming.
  await page.goto(`/tenants/${tenantId}`);
  await hydrated(page);
  page.once('dialog', (dialog) => dialog.accept());
  await page.locator('#delete-tenant').click();
  await page.waitForURL((url) => url.pathname === '/tenants');
  await expect(page.locator('#tenants-title')).toBeVisible();
  await expect(page.locator(`#tenants-table tr[data-tenant="${renamed}"]`)).toHaveCount(0);
  const gone = await request.get(`/api/v1/tenants/${tenantId}`, { headers: bearer(token) });
  expect(gone.status()).toBe(404);
});

test('a tenant member sees the tenant but not the admin controls', async ({ page, request, consoleErrors }) => {
  const dave = await signUp(request, unique('dave'));
  const token = await apiToken(request);
  const name = unique('readers');
  const tenant = await createTenant(request, token, name);
  const added = await request.post(`/api/v1/tenants/${tenant.id}/members`, {
    headers: bearer(token),
    data: { user_name: dave.name, role: 'guest' },
  });
  expect(added.status()).toBe(201);

  await signIn(page, { name: dave.name, password: PASSWORD }, `/tenants/${tenant.id}`);
  await expect(page.locator('#tenant-title')).toHaveText(name);
  await expect(page.locator(`#members-table tr[data-member="${dave.name}"]`)).toContainText('guest');
  await expect(page.locator('#members-table select')).toHaveCount(0);
  await expect(page.locator('#add-member-form')).toHaveCount(0);
  await expect(page.locator('#tenant-edit-form')).toHaveCount(0);
  await expect(page.locator('#delete-tenant')).toHaveCount(0);
});

test('the roles page draws the policy as a matrix', async ({ page, consoleErrors }) => {
  await signIn(page, ROOT, '/roles');
  const cell = (object: string, role: string, action: string) =>
    page.locator(`#roles-table tr[data-object="${object}"] td[data-role="${role}"][data-action="${action}"]`);
  await expect(page.locator('#roles-table')).toBeVisible();
  await expect(cell('clusters', 'admin', 'delete')).toHaveClass(/\byes\b/);
  await expect(cell('tenants', 'admin', 'delete')).toHaveClass(/\bno\b/);
  await expect(cell('jobs', 'member', 'create')).toHaveClass(/\byes\b/);
  await expect(cell('jobs', 'guest', 'create')).toHaveClass(/\bno\b/);
  await expect(cell('tenants', 'user', 'create')).toHaveClass(/\byes\b/);
  // Root may do everything, including on objects only it is named for.
  await expect(cell('*', 'root', 'delete')).toHaveClass(/\byes\b/);
  await expect(cell('*', 'admin', 'read')).toHaveClass(/\bno\b/);
  await page.screenshot({ path: 'test-results/roles.png', fullPage: true });
});

test('the audit log filters by event, outcome, tenant and actor, in the URL', async ({ page, request, consoleErrors }) => {
  const token = await apiToken(request);
  const name = unique('audited');
  const tenant = await createTenant(request, token, name);
  // A refused change is recorded too.
  const bad = await request.post('/api/v1/tenants', { headers: bearer(token), data: { name: ' ' } });
  expect(bad.status()).toBe(400);

  await signIn(page, ROOT, '/audit');
  await expect(page.locator('#audit-table')).toBeVisible();
  await expect(page.locator('.pager')).toContainText('Page 1 of');

  await page.getByLabel('Event').fill('tenants.create');
  await page.getByLabel('Outcome').selectOption('failure');
  await answered(page, 'list_audits', () => page.getByRole('button', { name: 'Filter' }).click());
  await page.waitForURL((url) => url.searchParams.get('event') === 'tenants.create' && url.searchParams.get('state') === 'failure');
  const rows = page.locator('#audit-table tbody tr');
  await expect(rows.first()).toBeVisible();
  await expect(page.locator('#audit-table tbody tr:not([data-event="tenants.create"])')).toHaveCount(0);
  await expect(page.locator('#audit-table tbody .badge', { hasNotText: 'failure' })).toHaveCount(0);

  // The tenant filter, by name; the entry that created it is there.
  await page.goto('/audit?event=tenants.create');
  await hydrated(page);
  await page.getByLabel('Tenant').selectOption({ label: name });
  await answered(page, 'list_audits', () => page.getByRole('button', { name: 'Filter' }).click());
  await page.waitForURL((url) => url.searchParams.get('tenant_id') === String(tenant.id));
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText(name);
  await expect(rows.first()).toContainText('success');

  // Clicking an actor filters by it.
  await rows.first().getByRole('link', { name: ROOT.name }).click();
  await page.waitForURL((url) => url.searchParams.get('actor_name') === ROOT.name);
  await expect(page.locator('#filter-actor')).toHaveValue(ROOT.name);
  await page.screenshot({ path: 'test-results/audit.png', fullPage: true });

  await page.goto('/audit?event=no.such.event');
  await expect(page.getByText('No entry matches these filters')).toBeVisible();
});

test('peers insight: table, search, charts and CSV export', async ({ page, request, consoleErrors }) => {
  const token = await apiToken(request);
  // The cluster's peer registers when it first asks for schedulers.
  let peers: { hostname: string; ip: string; state: string; version: string }[] = [];
  await expect
    .poll(async () => {
      const resp = await request.get('/api/v1/peers?per_page=1000', { headers: bearer(token) });
      peers = await resp.json();
      return peers.length;
    }, { timeout: 20_000 })
    .toBeGreaterThan(0);

  await signIn(page, ROOT, '/peers');
  const rows = page.locator('#peers-table tbody tr');
  await expect(rows).toHaveCount(Math.min(peers.length, 50));
  await expect(page.locator('.pager')).toContainText(`${peers.length} peers`);

  // Charts count every matching peer.
  await expect(page.locator('#peer-count')).toContainText(`${peers.length} matching peers`);
  const counted = async (chart: string) =>
    (await page.locator(`#${chart} .bar`).evaluateAll((bars) => bars.map((b) => Number(b.getAttribute('data-count')))))
      .reduce((a, b) => a + b, 0);
  for (const chart of ['chart-version', 'chart-state', 'chart-idc', 'chart-location']) {
    expect(await counted(chart), chart).toBe(peers.length);
  }
  const version = peers[0].version || 'unknown';
  await expect(page.locator(`#chart-version .bar[data-label="${version}"]`)).toHaveCount(1);

  // Search by hostname, then by IP.
  const target = peers[0];
  await page.getByLabel('Hostname or IP').fill(target.hostname);
  await answered(page, 'list_peers', () => page.getByRole('button', { name: 'Filter' }).click());
  await page.waitForURL((url) => url.searchParams.get('search') === target.hostname);
  const named = peers.filter((p) => p.hostname === target.hostname).length;
  await expect(rows).toHaveCount(named);
  await expect(page.locator(`#peers-table tbody tr:not([data-hostname="${target.hostname}"])`)).toHaveCount(0);
  await page.goto(`/peers?search=${encodeURIComponent(target.ip)}`);
  await expect(rows.first()).toContainText(target.ip);
  await page.goto('/peers?search=no-such-host.invalid');
  await expect(page.getByText('No peer matches')).toBeVisible();

  // State filter.
  await page.goto(`/peers?state=${target.state}`);
  await expect(page.locator('#filter-state')).toHaveValue(target.state);
  await expect(rows.first()).toBeVisible();
  await expect(page.locator('#peers-table tbody .badge', { hasNotText: new RegExp(`^${target.state}$`) })).toHaveCount(0);

  // Export: a data: link whose CSV has a header and a line per peer.
  await page.goto('/peers');
  await hydrated(page);
  await page.locator('#export-csv').click();
  await page.waitForURL((url) => url.searchParams.get('export') === 'csv');
  const link = page.locator('#csv-download');
  await expect(link).toHaveAttribute('download', 'peers.csv');
  const href = (await link.getAttribute('href')) ?? '';
  expect(href.startsWith('data:text/csv;charset=utf-8,')).toBeTruthy();
  const csv = decodeURIComponent(href.slice(href.indexOf(',') + 1));
  const lines = csv.split('\r\n').filter((l) => l.length > 0);
  expect(lines[0]).toBe('hostname,ip,port,cluster_id,state,idc,location,version,os,platform,last_keep_alive_at,created_at');
  expect(lines.length).toBe(peers.length + 1);
  expect(csv).toContain(target.hostname);
  await page.screenshot({ path: 'test-results/peers.png', fullPage: true });

  // Without running any script, the server's page already carries the charts and the export.
  const html = await (await page.request.get('/peers?export=csv')).text();
  expect(html).toContain('id="chart-version"');
  expect(html).toContain('id="csv-download"');
  expect(html).toContain('href="data:text/csv;charset=utf-8,');
});
