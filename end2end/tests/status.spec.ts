import { test, expect } from './fixtures';

test('status page is server-rendered, then hydrates', async ({ page, consoleErrors }) => {
  // Without JavaScript the server's HTML must already carry the facts.
  const html = await (await page.request.get('/status')).text();
  expect(html).toContain('id="manager-version"');
  expect(html).toMatch(/id="health-state"[^>]*>healthy</);

  await page.goto('/status');
  await expect(page.locator('#health-state')).toHaveText('healthy');
  await expect(page.locator('#manager-version')).toHaveText(/^\d+\.\d+\.\d+/);
  await expect(page.locator('#check-count')).toHaveText('Not re-checked yet');

  // The button only works once the WASM has hydrated the page.
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true', { timeout: 20_000 });
  await page.locator('#recheck').click();
  await expect(page.locator('#check-count')).toHaveText('Re-checked once');
  await page.locator('#recheck').click();
  await expect(page.locator('#check-count')).toHaveText('Re-checked 2 times');
  await expect(page.locator('#health-state')).toHaveText('healthy');

  await page.screenshot({ path: 'test-results/status.png', fullPage: true });
});

test('unknown pages answer 404 with a way back', async ({ page, consoleErrors }) => {
  consoleErrors.expectErrorFrom('/no/such/page');
  const resp = await page.goto('/no/such/page');
  expect(resp?.status()).toBe(404);
  await expect(page.getByRole('heading', { name: 'Page not found' })).toBeVisible();
  // The way back leads to the overview, which asks a signed-out visitor to sign in first.
  await page.getByRole('link', { name: 'Go to the overview' }).click();
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible();
});
