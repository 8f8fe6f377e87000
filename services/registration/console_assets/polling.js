// Live screens poll the API (see README: why polling rather than server-sent events).
// One timer chain per screen; the router stops them all when the screen changes, and a
// hidden tab asks nothing.

import { escalate } from "./api.js";

let timers = [];

/** Call `refresh` every `intervalMs` after the last call ended, until `stopAll`. */
export function every(intervalMs, refresh) {
  const timer = { stopped: false, handle: null };
  timers.push(timer);
  const tick = async () => {
    if (timer.stopped) return;
    if (!document.hidden) {
      try {
        await refresh();
      } catch (error) {
        if (!timer.stopped) escalate(error);
      }
    }
    if (!timer.stopped) timer.handle = setTimeout(tick, intervalMs);
  };
  timer.handle = setTimeout(tick, intervalMs);
  return timer;
}

export function stopAll() {
  for (const timer of timers) {
    timer.stopped = true;
    clearTimeout(timer.handle);
  }
  timers = [];
}
