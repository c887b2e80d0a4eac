// The panels below the main view (a pool's requests, convergence, caches) read alike: a newer
// read cancels the one in flight (its answer is dropped), the panel is busy and says what it
// waits for meanwhile, and a failed read keeps what was shown before, under the error.

import { isSuperseded } from "./api.js";

/** Reads into `result`, saying progress in `status`; `keep`: what a failed read leaves. */
export function panelReader(result, status, keep) {
  let loading = null;

  function idle() {
    result.removeAttribute("aria-busy");
    status.textContent = "";
  }

  return {
    /** `task(signal)` shows its answer; `failure(error)` is the view of an ApiError. */
    async read(progress, task, failure) {
      loading?.abort();
      const controller = new AbortController();
      loading = controller;
      result.setAttribute("aria-busy", "true");
      status.textContent = progress;
      try {
        await task(controller.signal);
      } catch (error) {
        if (isSuperseded(error)) return;
        result.replaceChildren(failure(error), ...(keep ? result.querySelectorAll(keep) : []));
      } finally {
        if (loading === controller) idle();
      }
    },
    /** Cancel any read and show nothing. */
    clear() {
      loading?.abort();
      result.replaceChildren();
      idle();
    },
  };
}
