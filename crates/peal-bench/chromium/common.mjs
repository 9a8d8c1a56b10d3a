// What the Chromium drivers (drive.mjs, network.mjs) share.

/** Stops cleanly on SIGINT, SIGTERM and SIGHUP: `cleanup()`, then exit 128 + n. */
export function stopOnSignals(log, cleanup) {
  for (const [sig, n] of [["SIGINT", 2], ["SIGTERM", 15], ["SIGHUP", 1]]) {
    process.on(sig, () => {
      log(`${sig}: stopping`);
      cleanup().finally(() => process.exit(128 + n));
    });
  }
}

/** `promise`, or an error naming `what` after `ms`. */
export function within(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
