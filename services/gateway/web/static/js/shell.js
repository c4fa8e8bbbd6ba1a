// What every view uses of the page around it: the breadcrumb, in-page navigation, focus.

import { h, replace } from "./dom.js";

export function setCrumbs(items) {
  const crumbs = document.getElementById("crumbs");
  replace(
    crumbs,
    items.length
      ? h(
          "ol",
          {},
          items.map(([label, href], i) =>
            h(
              "li",
              {},
              i === items.length - 1
                ? h("span", { "aria-current": "page", title: label }, label)
                : h("a", { href, "data-link": true, title: label }, label),
            ),
          ),
        )
      : null,
  );
}

/** Moves to another page path without a reload (app.js routes on the event). */
export function navigate(path, { replace: replaceState = false } = {}) {
  if (replaceState) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  window.dispatchEvent(new Event("cardflow:navigate"));
}

/** Focus the new view's heading, so keyboard and screen-reader users land on it. */
export function focusHeading(root = document.getElementById("main")) {
  const heading = root.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
  }
}

/** Calls fn at most once per `ms`, the last call of a burst included (trailing). */
export function throttle(fn, ms) {
  let last = 0;
  let timer = null;
  const wrapped = () => {
    const wait = last + ms - Date.now();
    if (wait <= 0) {
      last = Date.now();
      fn();
    } else if (!timer) {
      timer = setTimeout(() => {
        timer = null;
        wrapped();
      }, wait);
    }
  };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}
