// Tests import `test` from here: baseURL is the running cluster's manager, and any browser
// console error or uncaught page error fails the test, except errors from URLs a test declares
// it expects to fail (for example a page it requests to check the 404).
import { test as base, expect } from '@playwright/test';
import { readState } from '../cluster';

interface ConsoleWatch {
  /** Console errors seen so far, as "message (url)". */
  errors: string[];
  /** Declares that loading this path is expected to log an error (a deliberate 404). */
  expectErrorFrom(path: string): void;
}

export const test = base.extend<{ consoleErrors: ConsoleWatch }>({
  baseURL: async ({}, use) => {
    await use(readState().cluster.manager.http);
  },
  consoleErrors: async ({ page }, use) => {
    const errors: string[] = [];
    const allowed: string[] = [];
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(`${msg.text()} (${msg.location().url})`);
    });
    page.on('pageerror', (err) => errors.push(err.message));
    await use({ errors, expectErrorFrom: (path) => allowed.push(path) });
    // A server function the API refused (4xx: a bad field, a lost session, another tenant's
    // object) is part of a page's normal flow, and the page shows it; 5xx never is.
    const refused = /^Failed to load resource: the server responded with a status of 4\d\d .*\/console\/fn\//;
    const unexpected = errors.filter((e) => !refused.test(e) && !allowed.some((path) => e.endsWith(`${path})`)));
    expect(unexpected, 'browser console errors').toEqual([]);
  },
});

export { expect };

/** The root user `damselfly up` creates for the tests (global-setup.ts sets its password). */
export const ROOT = { name: 'root', password: 'e2e-root-password' };

/**
 * Signs in through the sign-in form, as a person would, and waits for the page it lands on
 * to be hydrated.
 */
export async function signIn(
  page: import('@playwright/test').Page,
  who: { name: string; password: string } = ROOT,
  returnTo = '/',
) {
  await page.goto(`/signin?return_to=${encodeURIComponent(returnTo)}`);
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true', { timeout: 20_000 });
  await page.getByLabel('User name').fill(who.name);
  await page.getByLabel('Password').fill(who.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((url) => url.pathname === returnTo.split('?')[0]);
  await expect(page.locator('#whoami')).toHaveText(who.name);
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true', { timeout: 20_000 });
}

/** A sign-in token for API calls the test makes to set things up. */
export async function apiToken(request: import('@playwright/test').APIRequestContext, who = ROOT): Promise<string> {
  const resp = await request.post('/api/v1/users/signin', { data: who });
  expect(resp.ok(), `sign in as ${who.name}`).toBeTruthy();
  return (await resp.json()).token;
}
