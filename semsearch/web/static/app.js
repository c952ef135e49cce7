// semsearch page: plain JavaScript, no build step, no network beyond this server.
"use strict";

const $ = (id) => document.getElementById(id);
let tagsNote = "";  // why the tags are GloVe words only, if they are (from /api/health)

function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.appendChild(child);
  return node;
}

function say(text, isNote = false) {
  $("message").textContent = text || "";
  $("message").className = isNote ? "note" : "";
}

async function getJSON(url, options) {
  const response = await fetch(url, options);
  const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

// One bar per query word: its share of the cosine score ("why this image").
function whyBars(shares) {
  const box = el("div", { class: "why", title: "each word's share of the score" });
  const largest = Math.max(1e-9, ...shares.map(([, s]) => Math.abs(s)));
  for (const [word, share] of shares) {
    const bar = el("span", { class: share < 0 ? "bar neg" : "bar" });
    bar.style.width = `${(60 * Math.abs(share)) / largest}px`;
    box.appendChild(el("div", { class: "row" }, [
      el("span", { class: "word", text: word }), bar, el("span", { class: "val", text: (Math.abs(share) < 5e-4 ? 0 : share).toFixed(3) }),
    ]));
  }
  return box;
}

function card(result) {
  const children = [
    el("img", { src: result.image, alt: result.caption || result.key, loading: "lazy" }),
    el("div", { class: "score", text: `${result.score.toFixed(3)}  ·  ${result.key}` }),
  ];
  if (result.caption) children.push(el("div", { class: "caption", text: result.caption }));
  if (result.shares) children.push(whyBars(result.shares));
  const node = el("div", { class: "result", "data-key": result.key }, children);
  node.addEventListener("click", () => showDetail(result));
  return node;
}

function showResults(target, results) {
  target.replaceChildren(...results.map(card));
}

function k() {
  return $("k").value || "9";
}

// The search's parameters: k, and the tag filter if one is typed in.
function searchParams() {
  const tag = $("tag").value.trim();
  return `k=${encodeURIComponent(k())}` + (tag ? `&tag=${encodeURIComponent(tag)}` : "");
}

// One tag chip: an ImageNet label shows its probability; click it to search among the images carrying it.
function tagChip([text, score, source]) {
  const chip = el("li", {
    class: source === "imagenet" ? "label" : "word",
    text: source === "imagenet" ? `${text} ${Math.round(100 * score)}%` : text,
    title: source === "imagenet" ? `ImageNet label, probability ${score.toFixed(3)}: click to search images with this tag`
                                 : `GloVe word, cosine ${score.toFixed(3)}: click to search images with this tag`,
  });
  chip.addEventListener("click", () => {
    $("tag").value = text;
    if ($("q").value.trim()) search();
  });
  return chip;
}

async function search(event) {
  if (event) event.preventDefault();
  const q = $("q").value.trim();
  if (!q) return;
  say("searching…", true);
  try {
    const body = await getJSON(`/api/search?q=${encodeURIComponent(q)}&${searchParams()}`);
    showResults($("results"), body.results);
    const notes = [];
    if (body.tag) notes.push(`only images tagged "${body.tag}"`);
    if (body.unknown_words.length) notes.push(`not known, left out: ${body.unknown_words.join(", ")}`);
    if (body.warning) notes.push(body.warning);
    say(notes.join(" · "), true);
    history.replaceState(null, "", `?q=${encodeURIComponent(q)}&${searchParams()}`);
  } catch (e) {
    $("results").replaceChildren();
    say(e.message);
  }
}

async function searchImage(file) {
  say(`searching with ${file.name}…`, true);
  try {
    const body = await getJSON(`/api/search/image?${searchParams()}`, {
      method: "POST", body: file, headers: { "Content-Type": file.type || "application/octet-stream" },
    });
    showResults($("results"), body.results);
    say(`images like ${file.name} (${body.width} x ${body.height})`, true);
  } catch (e) {
    say(e.message);
  }
}

async function showDetail(result) {
  $("detail").hidden = false;
  $("detail-image").src = result.image;
  $("detail-title").textContent = result.key;
  $("detail-caption").textContent = result.caption || "";
  $("tags").replaceChildren();
  $("tags-note").textContent = tagsNote;
  $("similar").replaceChildren();
  $("detail").scrollIntoView({ behavior: "smooth" });
  const key = encodeURIComponent(result.key).replace(/%2F/g, "/");
  try {
    const similar = await getJSON(`/api/similar/${key}?k=${encodeURIComponent(k())}`);
    showResults($("similar"), similar.results);
  } catch (e) {
    $("similar").replaceChildren(el("p", { class: "muted", text: e.message }));
  }
  try {
    const tags = await getJSON(`/api/tags/${key}?k=10`);
    $("tags").replaceChildren(...tags.tags.map(tagChip));
  } catch (e) {
    $("tags").replaceChildren(el("li", { class: "muted", text: e.message }));
  }
}

function setUpDrop() {
  const drop = $("drop");
  drop.addEventListener("click", () => $("file").click());
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter") $("file").click(); });
  $("file").addEventListener("change", () => { if ($("file").files[0]) searchImage($("file").files[0]); });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files[0]) searchImage(e.dataTransfer.files[0]);
  });
}

async function start() {
  $("search-form").addEventListener("submit", search);
  $("close-detail").addEventListener("click", () => { $("detail").hidden = true; });
  setUpDrop();
  try {
    const health = await getJSON("/api/health");
    $("status").textContent = `${health.images} images · ${health.text_encoder}` +
      (health.explain ? " · bars: each word's share of the score" : "");
    $("k").max = health.limits.max_k;
    tagsNote = health.tags_note || "";
    if (!health.tags) $("tag").disabled = true;
    if (!health.image_search) $("drop-text").textContent = "image queries are not available for this model (it needs a CNN for its descriptors)";
  } catch (e) {
    say(e.message);
  }
  const params = new URLSearchParams(location.search);
  if (params.get("q")) {
    $("q").value = params.get("q");
    if (params.get("k")) $("k").value = params.get("k");
    if (params.get("tag")) $("tag").value = params.get("tag");
    search();
  }
}

start();
