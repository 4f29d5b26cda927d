// Gatehouse dashboard: small progressive enhancements. Every page works
// without this file; it adds the copy button, confirmation before
// destructive actions, the custom-expiry toggle and extra scope rows.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Copy a read-only field to the clipboard.
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const field = document.getElementById(button.dataset.copy);
    const status = document.getElementById("copy-status");
    if (!field) continue;
    field.addEventListener("focus", () => field.select());
    button.addEventListener("click", async () => {
      field.focus();
      field.select();
      let copied = false;
      try {
        await navigator.clipboard.writeText(field.value);
        copied = true;
      } catch {
        copied = document.execCommand && document.execCommand("copy");
      }
      const label = button.textContent;
      button.textContent = copied ? "Copied" : "Press Ctrl+C";
      if (status) status.textContent = copied ? "Token copied to the clipboard." : "Select the token and copy it with Ctrl+C (⌘C).";
      setTimeout(() => { button.textContent = label; }, 2000);
    });
  }

  // Ask before revoking, disabling and other actions that cannot be undone.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }

  // Show the custom-hours field only when "Custom…" is chosen.
  const expiration = document.getElementById("expiration");
  const custom = document.getElementById("custom-hours-field");
  if (expiration && custom) {
    const sync = () => { custom.hidden = expiration.value !== custom.dataset.showWhen; };
    expiration.addEventListener("change", sync);
    sync();
  }

  // Add scope rows without a round trip.
  const rows = document.getElementById("scope-rows");
  const add = document.getElementById("add-scope");
  if (rows && add) {
    add.hidden = false;
    add.addEventListener("click", () => {
      const last = rows.lastElementChild;
      if (!last || rows.children.length >= 20) return;
      const row = last.cloneNode(true);
      const n = rows.children.length + 1;
      for (const label of row.querySelectorAll("label")) {
        label.htmlFor = label.htmlFor.replace(/^scope-\d+-/, `scope-${n}-`);
      }
      for (const input of row.querySelectorAll("input")) {
        input.id = input.id.replace(/^scope-\d+-/, `scope-${n}-`);
        input.value = "";
      }
      rows.appendChild(row);
      row.querySelector("input").focus();
    });
  }

  // Close the user menu on Escape or a click elsewhere.
  const menu = document.querySelector("details.user-menu");
  if (menu) {
    document.addEventListener("click", (event) => {
      if (menu.open && !menu.contains(event.target)) menu.open = false;
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && menu.open) {
        menu.open = false;
        menu.querySelector("summary").focus();
      }
    });
  }
});

// A problem named by its line ("Line 3") selects that line of its text
// box when clicked, so it can be fixed at once.
document.addEventListener("DOMContentLoaded", () => {
  for (const ref of document.querySelectorAll("a.line-ref[data-target][data-line]")) {
    ref.addEventListener("click", (event) => {
      const box = document.getElementById(ref.dataset.target);
      const line = Number(ref.dataset.line);
      if (!box || !(line > 0)) return;
      event.preventDefault();
      const lines = box.value.split("\n");
      let start = 0;
      for (let i = 0; i < line - 1 && i < lines.length; i++) start += lines[i].length + 1;
      const end = start + (lines[line - 1] || "").length;
      box.focus();
      box.setSelectionRange(start, end);
      const height = parseFloat(getComputedStyle(box).lineHeight) || 20;
      box.scrollTop = Math.max(0, (line - 3) * height);
    });
  }
});

// A "new password again" field says at once when it differs from the
// first (the server checks again).
document.addEventListener("DOMContentLoaded", () => {
  for (const again of document.querySelectorAll("input[data-same-as]")) {
    const first = document.getElementById(again.dataset.sameAs);
    if (!first) continue;
    const check = () => again.setCustomValidity(again.value === first.value ? "" : "The two passwords differ.");
    first.addEventListener("input", check);
    again.addEventListener("input", check);
  }
});

// A chart wider than a narrow window scrolls sideways: show its newest
// hours (at the right) first.
document.addEventListener("DOMContentLoaded", () => {
  for (const wrap of document.querySelectorAll(".chart-wrap")) {
    wrap.scrollLeft = wrap.scrollWidth;
  }
});
