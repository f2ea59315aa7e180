// Tenantry portal: live updates of a workspace page, copy buttons, and the new-workspace form's checks.
// Every page works without this file, except live updates.
"use strict";

function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "absolute";
  area.style.left = "-9999px";
  document.body.appendChild(area);
  area.select();
  const ok = document.execCommand("copy");
  area.remove();
  return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
}

function showCopyButtons(root) {
  root.querySelectorAll("button.copy[hidden]").forEach((b) => { b.hidden = false; });
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button.copy");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  const label = button.firstChild;
  copyText(source.textContent.trim()).then(
    () => { label.textContent = "Copied"; button.classList.add("done"); },
    () => { label.textContent = "Select and copy"; },
  );
  setTimeout(() => { label.textContent = "Copy"; button.classList.remove("done"); }, 2000);
});

function startLive(container) {
  if (!window.EventSource) return;
  const state = document.getElementById("live-state");
  const say = (text) => { if (state) { state.textContent = text; state.hidden = !text; } };
  const source = new EventSource(container.dataset.live);
  source.addEventListener("update", (event) => {
    const parts = JSON.parse(event.data);
    for (const [id, html] of Object.entries(parts)) {
      const element = document.getElementById(id);
      if (element && element.innerHTML !== html) element.innerHTML = html;
    }
    showCopyButtons(container);
    say("");
  });
  source.addEventListener("gone", () => {
    source.close();
    say("Live updates stopped: this workspace is no longer visible to you, or you signed out. Reload the page.");
  });
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) say("Live updates paused. Reload the page to resume them.");
  };
  document.documentElement.dataset.live = "on";
}

function slugFrom(name) {
  let slug = name.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
    .replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 63).replace(/-+$/, "");
  if (slug.slice(2, 4) === "--") slug = slug.slice(0, 2) + slug.slice(3);
  return slug;
}

function startChecks(form) {
  const name = form.elements.namedItem("name");
  const slug = form.elements.namedItem("slug");
  const domain = form.elements.namedItem("mailDomain");
  let slugEdited = slug.value !== "";
  let timer = null;
  let asked = 0;
  const show = (field, message) => {
    const input = form.elements.namedItem(field);
    const out = document.getElementById(field + "-problem");
    if (!input || !out) return;
    out.textContent = message || "";
    if (message) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
  };
  const check = () => {
    const mine = ++asked;
    const query = new URLSearchParams({ name: name.value, slug: slug.value, mailDomain: domain.value });
    fetch(form.dataset.check + "?" + query.toString(), { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : null))
      .then((answer) => {
        if (!answer || mine !== asked) return;
        for (const field of ["name", "slug", "mailDomain"]) {
          const typed = form.elements.namedItem(field).value;
          show(field, typed ? answer.problems[field] : "");
        }
      })
      .catch(() => {});
  };
  const later = () => { clearTimeout(timer); timer = setTimeout(check, 250); };
  name.addEventListener("input", () => {
    if (!slugEdited) slug.value = slugFrom(name.value);
    later();
  });
  slug.addEventListener("input", () => { slugEdited = slug.value !== ""; later(); });
  domain.addEventListener("input", later);
}

document.addEventListener("DOMContentLoaded", () => {
  showCopyButtons(document);
  const live = document.querySelector("[data-live]");
  if (live) startLive(live);
  const form = document.querySelector("form[data-check]");
  if (form) startChecks(form);
});
