"""How long the admin page takes to filter N open purge requests in the browser (issue 15).

Not part of any test run. Seeds an SQLite file with N requests (the service's own schema and
entries, as bench/harness/seed.py does), starts `purgecache serve` on a loopback port, opens
the page in headless Chromium (Debian's, through Playwright), signs in and applies a filter
that matches a few requests, `--rounds` times. Prints, per size, the median and the worst
time from the click on "Filter" to the counted answer on screen ("3 of 10,000 … match"),
all pages read included, and the time the browser spends filtering and sorting alone.

    .ci-work/venv/bin/python bench/admin_filter.py [--sizes 10000,20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness.loopback import ADMIN, serve
from harness.seed import FAR_FUTURE_MS, now_ms, seed_sqlite

CHROMIUM = "/usr/bin/chromium"
TIMED_FILTER = """() => new Promise((done) => {
  const status = document.getElementById("requests-status");
  const started = performance.now();
  new MutationObserver((changes, observer) => {
    if (/ match/.test(status.textContent)) {
      observer.disconnect();
      done(performance.now() - started);
    }
  }).observe(status, { childList: true, characterData: true, subtree: true });
  document.querySelector("#filter button[type=submit]").click();
})"""
# The browser's own work on rows already read: filter and sort with the page's module.
TIMED_SEARCH = """async (count) => {
  const { search } = await import("/search.js");
  const requests = Array.from({ length: count }, (_, i) => ({ provisionerId: `proj-${i % 97}`,
    workerType: "linux", cacheName: `cache-${i}`, before: new Date(1.7e12 + i).toISOString() }));
  const started = performance.now();
  search(requests, { pool: "proj-4", cache: "cache-9", order: "newest" });
  return performance.now() - started;
}"""


def rows(count: int) -> list[tuple[str, str, int, int]]:
    now = now_ms()
    found = [
        (f"pool-{i // 100:04d}/workers", f"cache-{i % 100:02d}-level-3", now - i, FAR_FUTURE_MS)
        for i in range(count)
    ]
    return sorted(found)


def measure(browser: object, count: int, rounds: int) -> tuple[list[float], float]:
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder)
        seed_sqlite(data_dir / "purgecache.db", rows(count))
        process, root = serve(data_dir)
        try:
            page = browser.new_page()  # type: ignore[attr-defined]
            page.goto(root + "/?view=requests")  # "/" is the purge history
            page.wait_for_selector("body[data-ready]")
            page.get_by_label("Client ID").fill(ADMIN[0])
            page.get_by_label("Access token").fill(ADMIN[1])
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("button", name="Sign out").wait_for()
            page.get_by_label("Cache name contains").fill("cache-07-")
            page.get_by_label("Pool contains").fill("pool-000")
            times = [page.evaluate(TIMED_FILTER) for _ in range(rounds)]
            search = statistics.median(page.evaluate(TIMED_SEARCH, count) for _ in range(rounds))
            page.close()
            return times, search
        finally:
            process.terminate()
            process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,20000")
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        print("requests  filter: median  worst   (of which filter+sort in the browser)")
        for count in (int(size) for size in options.sizes.split(",")):
            times, search = measure(browser, count, options.rounds)
            print(
                f"{count:>8,}  {statistics.median(times) / 1000:>13.3f} s"
                f"  {max(times) / 1000:.3f} s  ({search:.1f} ms)"
            )
        browser.close()


if __name__ == "__main__":
    main()
