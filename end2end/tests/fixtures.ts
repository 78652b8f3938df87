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
    const unexpected = errors.filter((e) => !allowed.some((path) => e.endsWith(`${path})`)));
    expect(unexpected, 'browser console errors').toEqual([]);
  },
});

export { expect };
