// The health line: /readyz at load, then every few seconds while the page
// is visible, so a node that goes down (or comes back) shows as such.
import { $ } from './dom.js';
import { api } from './api.js';

const EVERY_MS = 3000;
let busy = false;

/** checkHealth asks /readyz once and shows the answer. */
export async function checkHealth() {
  if (busy) return;
  busy = true;
  const el = $('health');
  try {
    const r = await api('GET', '/readyz');
    el.textContent = `${location.host} is ${r.status}`;
    el.className = 'health ok';
  } catch (e) {
    el.textContent = e.status
      ? `${location.host} is not ready (${e.status}): ${e.message}`
      : `${location.host} is down or unreachable: checking again every ${EVERY_MS / 1000} s`;
    el.className = 'health bad';
  } finally {
    busy = false;
  }
}

export function initHealth() {
  checkHealth();
  setInterval(() => { if (!document.hidden) checkHealth(); }, EVERY_MS);
  document.addEventListener('visibilitychange', () => { if (!document.hidden) checkHealth(); });
}
