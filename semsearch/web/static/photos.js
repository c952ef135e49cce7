// semsearch page, photo parts: filters and duplicates (photo databases), more/less like this (all).
// Loaded after app.js and uses its helpers ($, el, say, getJSON, showResults, k).
"use strict";

const FILTERS = ["after", "before", "folder", "camera", "orientation", "min_size"];
const marks = new Map();  // key -> "good" | "bad"
let photoMode = false;

function filterParams() {
  if (!photoMode) return "";
  return FILTERS.map((name) => [name, $(`f-${name}`).value.trim()])
    .filter(([, value]) => value)
    .map(([name, value]) => `&${name}=${encodeURIComponent(value)}`).join("");
}

function filterBar(info) {
  const input = (name, label, attrs) => el("label", {}, [document.createTextNode(`${label} `),
    el("input", Object.assign({ id: `f-${name}`, type: "search" }, attrs))]);
  const camera = el("datalist", { id: "cameras" }, info.cameras.map((c) => el("option", { value: c })));
  const folders = el("datalist", { id: "folders" }, info.folders.map((f) => el("option", { value: f })));
  const orientation = el("select", { id: "f-orientation" }, ["", "landscape", "portrait", "square"].map(
    (o) => el("option", { value: o, text: o || "any" })));
  return el("div", { id: "filters" }, [
    input("after", "taken from", { placeholder: info.first || "YYYY-MM", size: "10", title: "YYYY, YYYY-MM or YYYY-MM-DD" }),
    input("before", "before", { placeholder: info.last || "YYYY-MM", size: "10" }),
    input("folder", "in folder", { list: "folders", placeholder: "any", size: "14" }),
    input("camera", "camera", { list: "cameras", placeholder: "any", size: "12" }),
    el("label", {}, [document.createTextNode("orientation "), orientation]),
    input("min_size", "at least", { placeholder: "WxH", size: "9" }),
    camera, folders,
    el("button", { id: "show-duplicates", type: "button", text: "Duplicates" }),
  ]);
}

// Photo databases: every text search goes through /api/photos/search (filters, date and folder per result).
async function photoSearch(event) {
  event.preventDefault();
  event.stopImmediatePropagation();
  const q = $("q").value.trim();
  if (!q) return;
  say("searching…", true);
  try {
    const body = await getJSON(`/api/photos/search?q=${encodeURIComponent(q)}&k=${encodeURIComponent(k())}${filterParams()}`);
    marks.clear();
    showResults($("results"), body.results);
    const notes = body.filter === "no filter" ? [] : [body.filter];
    if (body.unknown_words.length) notes.push(`not known, left out: ${body.unknown_words.join(", ")}`);
    say(notes.join(" · "), true);
  } catch (e) {
    $("results").replaceChildren();
    say(e.message);
  }
}

function markButtons(node) {
  if (node.querySelector(".marks")) return;
  const key = node.getAttribute("data-key");
  const button = (kind, text, title) => {
    const b = el("button", { type: "button", class: `mark ${kind}`, text, title });
    b.addEventListener("click", (e) => {
      e.stopPropagation();
      if (marks.get(key) === kind) marks.delete(key); else marks.set(key, kind);
      refreshMarks();
    });
    return b;
  };
  node.appendChild(el("div", { class: "marks" }, [
    button("good", "👍 more like this", "mark good, then search again"),
    button("bad", "👎 less like this", "mark bad, then search again"),
  ]));
}

function refreshMarks() {
  for (const node of $("results").querySelectorAll(".result")) {
    const mark = marks.get(node.getAttribute("data-key"));
    node.classList.toggle("good", mark === "good");
    node.classList.toggle("bad", mark === "bad");
  }
  $("again").hidden = marks.size === 0;
}

async function searchAgain() {
  const q = $("q").value.trim();
  if (!q || !marks.size) return;
  const params = [...marks].map(([key, kind]) => `&${kind}=${encodeURIComponent(key)}`).join("");
  say("searching again…", true);
  try {
    const body = await getJSON(`/api/feedback?q=${encodeURIComponent(q)}&k=${encodeURIComponent(k())}${params}${filterParams()}`);
    showResults($("results"), body.results);
    const entered = new Set(body.entered);
    for (const node of $("results").querySelectorAll(".result")) {
      node.classList.toggle("entered", entered.has(node.getAttribute("data-key")));
    }
    refreshMarks();
    say(`moved toward ${body.good.length} and away from ${body.bad.length} marked (cosine with the first query ` +
        `${body.moved_cosine.toFixed(3)}): ${body.entered.length} new (outlined), ${body.left.length} gone` +
        (body.left.length ? `: ${body.left.join(", ")}` : ""), true);
  } catch (e) {
    say(e.message);
  }
}

async function showDuplicates() {
  say("finding duplicates…", true);
  try {
    const body = await getJSON("/api/duplicates");
    const groups = body.groups.map((group, n) => el("div", { class: "dup-group" }, [
      el("h3", { text: `group ${n + 1}: ${group.kind === "exact" ? "the same bytes" : `near (cosine ≥ ${body.near_threshold})`}` }),
      el("div", { class: "grid" }, group.photos.map((p, i) => el("div", { class: "result" }, [
        el("img", { src: p.image, alt: p.key, loading: "lazy" }),
        el("div", { class: "score", text: i === 0 ? `best · ${p.key}` : p.key }),
        el("div", { class: "caption", text: `${p.width}×${p.height}, ${(p.bytes / 1000).toFixed(0)} kB` +
          (i ? `, similarity ${p.similarity.toFixed(3)}` : "") }),
      ]))),
    ]));
    $("results").replaceChildren(...groups);
    say(body.groups.length ? `${body.groups.length} groups of duplicates, best copy first (nothing is deleted)`
                           : "no duplicates", true);
  } catch (e) {
    say(e.message);
  }
}

async function startPhotos() {
  const again = el("button", { id: "again", type: "button", text: "Search again with my marks", hidden: "" });
  again.addEventListener("click", searchAgain);
  $("search-form").after(again);
  new MutationObserver(() => {
    for (const node of $("results").querySelectorAll(".result[data-key]")) markButtons(node);
  }).observe($("results"), { childList: true });
  try {
    const info = await getJSON("/api/photos/info");
    photoMode = true;
    $("search-form").after(filterBar(info));
    $("show-duplicates").addEventListener("click", showDuplicates);
    $("search-form").addEventListener("submit", photoSearch, { capture: true });
  } catch (e) {
    // a COCO database: no filters, no duplicates
  }
}

startPhotos();
