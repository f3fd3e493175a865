// image-pipeline's web page: sign in, upload (straight to S3 with a presigned URL), live status, gallery, trace,
// delete. Served by the stack's API at <api>/web/index.html, so "../" is the API (same origin, no CORS).
// The tokens live in this tab's sessionStorage only (gone when the tab closes), never in localStorage.
"use strict";

const API = new URL("../", location.href);
const ACCEPTED = ["image/jpeg", "image/png", "image/webp", "image/gif", "image/heic", "image/heif", "image/avif"];
const TERMINAL = ["PROCESSED", "REJECTED", "FAILED", "EXPIRED"];
const PAGE = 24;
const $ = (selector) => document.querySelector(selector);
const cards = new Map(); // imageId -> {element, record, timer, delay}
let cursor = null;

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

function apiKey() { return sessionStorage.getItem("imgpipe.apiKey") || ""; }

// ---------------------------------------------------------------- sign-in

let config = null; // web/config.json: {signIn: "cognito", endpoint, region, clientId} or {signIn: "token"}
const SESSION = "imgpipe.session"; // {token, refreshToken, expiresAt (ms), username}

function session() {
  try { return JSON.parse(sessionStorage.getItem(SESSION)) || null; } catch { return null; }
}

function keep(value) {
  if (value) sessionStorage.setItem(SESSION, JSON.stringify(value));
  else sessionStorage.removeItem(SESSION);
}

async function cognito(action, body) {
  const response = await fetch(config.endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": `AWSCognitoIdentityProviderService.${action}` },
    body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const code = String(data.__type || response.status).split("#").pop();
    throw new ApiError(response.status, code, data.message || data.Message || response.statusText);
  }
  return data;
}

function started(result, username, refreshToken) {
  keep({
    token: result.IdToken,
    refreshToken: result.RefreshToken || refreshToken,
    expiresAt: Date.now() + (result.ExpiresIn || 3600) * 1000,
    username,
  });
}

async function signIn(username, password) {
  const answer = await cognito("InitiateAuth", {
    AuthFlow: "USER_PASSWORD_AUTH", ClientId: config.clientId, AuthParameters: { USERNAME: username, PASSWORD: password },
  });
  if (!answer.AuthenticationResult) {
    throw new ApiError(401, answer.ChallengeName || "CHALLENGE", "your account needs a new password: ask an operator to set one");
  }
  started(answer.AuthenticationResult, username);
}

async function refresh() {
  const current = session();
  if (!current || !current.refreshToken || config.signIn !== "cognito") return false;
  try {
    const answer = await cognito("InitiateAuth", {
      AuthFlow: "REFRESH_TOKEN_AUTH", ClientId: config.clientId, AuthParameters: { REFRESH_TOKEN: current.refreshToken },
    });
    started(answer.AuthenticationResult, current.username, current.refreshToken);
    return true;
  } catch {
    return false;
  }
}

async function bearer() {
  const current = session();
  if (current && current.expiresAt - Date.now() < 60000) await refresh();
  return (session() || {}).token;
}

function signedOut(message) {
  keep(null);
  for (const card of cards.values()) clearTimeout(card.timer);
  cards.clear();
  $("#gallery").replaceChildren();
  $("#app").hidden = true;
  $("#who").hidden = true;
  $("#sign-in").hidden = false;
  $("#sign-in-error").textContent = message || "";
}

function signedIn() {
  const current = session();
  $("#sign-in").hidden = true;
  $("#app").hidden = false;
  $("#who").hidden = false;
  $("#who-name").textContent = current.username || "you";
  cursor = null;
  loadPage();
}

function tokenSubject(token) {
  try { return JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))); } catch { return {}; }
}

async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  if (apiKey()) headers["x-api-key"] = apiKey();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let refreshed = false;
  for (let attempt = 0; ; attempt++) {
    headers.Authorization = `Bearer ${await bearer()}`;
    const response = await fetch(new URL(path, API), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if ((response.status === 429 || response.status === 503) && attempt < 5) {
      await sleep(Number(response.headers.get("Retry-After") || 0) * 1000 || 500 * 2 ** attempt);
      continue;
    }
    if (response.status === 401 && !refreshed) {
      refreshed = true;
      if (await refresh()) continue;
      signedOut("Your session ended: sign in again.");
    }
    if (response.status === 204) return null;
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = data.error || {};
      throw new ApiError(response.status, error.code || String(response.status), error.message || response.statusText);
    }
    return data;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children);
  return node;
}

// ---------------------------------------------------------------- upload

function put(url, file, signed, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("PUT", url);
    // the signed headers must be sent as granted (Content-Length the browser sets from the file itself)
    for (const [name, value] of Object.entries(signed)) {
      if (name.toLowerCase() !== "content-length") request.setRequestHeader(name, value);
    }
    request.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    request.onload = () => {
      if (request.status < 300) resolve();
      else if (request.status === 412) reject(new Error("this upload URL was already used"));
      else reject(new Error(`storage refused the upload (HTTP ${request.status})`));
    };
    request.onerror = () => reject(new Error("the upload failed (network)"));
    request.send(file);
  });
}

async function upload(file) {
  const bar = element("progress", { max: "1", value: "0", "aria-label": `Upload of ${file.name}` });
  const state = element("span", { text: "asking for an upload URL…" });
  const row = element("li", { "data-testid": "upload-row" }, element("span", { text: file.name }), bar, state);
  $("#uploads").prepend(row);
  try {
    const contentType = ACCEPTED.includes(file.type) ? file.type : undefined; // else the pipeline judges the bytes
    const grant = await call("POST", "upload", { filename: file.name, size: file.size, contentType });
    state.textContent = "uploading…";
    addCard({ imageId: grant.imageId, status: "PENDING", filename: file.name }, true);
    await put(grant.uploadUrl, file, grant.headers, (done) => { bar.value = done; });
    bar.value = 1;
    state.textContent = "uploaded";
    watch(grant.imageId);
  } catch (error) {
    state.textContent = `not uploaded: ${error.message}`;
    state.className = "reason";
  }
}

function uploadAll(files) {
  let running = 0;
  const queue = [...files];
  const next = () => {
    while (running < 3 && queue.length) {
      running++;
      upload(queue.shift()).finally(() => { running--; next(); });
    }
  };
  next();
}

// ---------------------------------------------------------------- gallery

const PLAIN = {
  PENDING: "Waiting for the upload",
  PROCESSING: "Processing…",
  PROCESSED: "Ready",
  REJECTED: "Rejected",
  FAILED: "Failed",
  EXPIRED: "The upload never arrived",
};

function addCard(record, first) {
  if (cards.has(record.imageId)) return cards.get(record.imageId);
  const card = { element: element("li", { class: "card", "data-testid": "image-card" }), record, delay: 1000 };
  cards.set(record.imageId, card);
  first ? $("#gallery").prepend(card.element) : $("#gallery").append(card.element);
  render(card);
  return card;
}

function label(record) { return record.filename || `image ${record.imageId.slice(0, 8)}`; }

function render(card) {
  const { record } = card;
  card.element.dataset.imageId = record.imageId;
  card.element.dataset.status = record.status;
  const frame = element("div", { class: "frame" });
  if (record.placeholder && record.placeholder.color) frame.style.background = record.placeholder.color;
  if (record.status === "PROCESSED") showPicture(frame, record);
  const meta = element("div", { class: "meta" },
    element("span", { class: "name", text: label(record) }),
    element("span", { class: `status status-${record.status}`, "data-testid": "status", text: PLAIN[record.status] || record.status }));
  if (record.error && TERMINAL.includes(record.status)) {
    meta.append(element("span", { class: "reason", "data-testid": "reason", text: reason(record.error) }));
  }
  meta.append(element("div", { class: "actions" },
    element("button", { type: "button", class: "secondary", "data-testid": "trace-button", "aria-label": `Trace of ${label(record)}`, text: "Trace", onclick: () => showTrace(record) }),
    ...(record.status === "PROCESSED" ? [element("button", { type: "button", class: "secondary", "data-testid": "focus-button", "aria-label": `Focal point of ${label(record)}`, text: "Focus", onclick: () => showFocus(card) })] : []),
    element("button", { type: "button", class: "danger", "data-testid": "delete-button", "aria-label": `Delete ${label(record)}`, text: "Delete", onclick: () => remove(card) })));
  card.element.replaceChildren(frame, meta);
}

function reason(error) {
  const words = {
    UNSUPPORTED_FORMAT: "This file is not an image format we accept",
    CORRUPT_IMAGE: "The file is damaged or not really an image",
    TOO_LARGE: "The file is too large",
    TOO_MANY_PIXELS: "The picture has too many pixels",
    EMPTY_FILE: "The file is empty",
  };
  return `${words[error.code] || "It could not be processed"}: ${error.message}`;
}

async function showPicture(frame, record) {
  try {
    const set = await call("GET", `images/${record.imageId}/srcset`);
    const sizes = "(max-width: 40rem) 100vw, 16rem";
    const picture = element("picture", {}, ...set.sources.map((s) => element("source", { type: s.type, srcset: s.srcset, sizes })));
    picture.append(element("img", {
      src: set.fallback.src, alt: label(record), width: set.fallback.width, height: set.fallback.height,
      loading: "lazy", decoding: "async", "data-testid": "image",
    }));
    frame.replaceChildren(picture);
  } catch (error) {
    frame.replaceChildren(element("span", { class: "reason", text: `no picture: ${error.message}` }));
  }
}

async function watch(imageId) {
  const card = cards.get(imageId);
  if (!card || card.timer) return;
  const poll = async () => {
    card.timer = null;
    try {
      const record = await call("GET", `images/${imageId}`);
      const changed = record.status !== card.record.status;
      card.record = { ...card.record, ...record };
      if (changed) render(card);
    } catch (error) {
      if (error.status === 404) return; // deleted
    }
    if (!TERMINAL.includes(card.record.status) && cards.has(imageId)) {
      card.timer = setTimeout(poll, card.delay);
      card.delay = Math.min(card.delay * 1.5, 10000); // back off: no hammering while an image waits
    }
  };
  card.timer = setTimeout(poll, card.delay);
}

async function loadPage() {
  $("#gallery-status").textContent = "Loading…";
  try {
    const page = await call("GET", `images?limit=${PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    for (const record of page.images) {
      addCard(record, false);
      if (!TERMINAL.includes(record.status)) watch(record.imageId);
    }
    cursor = page.cursor;
    $("#more").hidden = !cursor;
    $("#gallery-status").textContent = cards.size ? "" : "No images yet.";
  } catch (error) {
    $("#gallery-status").textContent = `Could not list the images: ${error.message}`;
  }
}

async function remove(card) {
  if (!confirm(`Delete ${label(card.record)}? The original and every rendition are removed.`)) return;
  try {
    await call("DELETE", `images/${card.record.imageId}`);
    clearTimeout(card.timer);
    cards.delete(card.record.imageId);
    card.element.remove();
    $("#gallery-status").textContent = `${label(card.record)} deleted.`;
  } catch (error) {
    $("#gallery-status").textContent = `Could not delete: ${error.message}`;
  }
}

// ---------------------------------------------------------------- focal point

// The picture at its own aspect ratio (upright, as every rendition is): a click at (x, y) of it is the focal point,
// fractions of its width and height, which PATCH /images/{id} records; the API then renders the crops again.
async function showFocus(card) {
  const frame = $("#focus-frame"), status = $("#focus-status");
  const marker = element("span", { id: "focus-marker", hidden: "" });
  const place = (point) => {
    marker.hidden = !point;
    if (point) Object.assign(marker.style, { left: `${point.x * 100}%`, top: `${point.y * 100}%` });
  };
  status.textContent = "Loading…";
  frame.replaceChildren();
  $("#focus").showModal();
  let pending = { ...(card.record.focalPoint || { x: 0.5, y: 0.5 }) }; // where the keyboard's marker is
  const send = async (point) => {
    status.textContent = "Saving…";
    try {
      const answer = await call("PATCH", `images/${card.record.imageId}`, { focalPoint: point });
      place(answer.focalPoint);
      pending = { ...(answer.focalPoint || { x: 0.5, y: 0.5 }) };
      card.record = { ...card.record, focalPoint: answer.focalPoint };
      if (!answer.rendering) {
        status.textContent = point ? "Focal point saved. This deployment makes no crops yet." : "Focal point cleared.";
        return;
      }
      status.textContent = "Focal point saved: making the crops again…";
      for (let delay = 500; ; delay = Math.min(delay * 1.5, 5000)) { // until the run it started has ended
        await sleep(delay);
        const record = await call("GET", `images/${card.record.imageId}`);
        if (record.execution === answer.rendering && TERMINAL.includes(record.status)) {
          card.record = { ...card.record, ...record };
          status.textContent = record.reprocessError ? `The crops could not be made: ${record.reprocessError.message}` : "Crops ready.";
          return;
        }
      }
    } catch (error) {
      status.textContent = `Could not set the focal point: ${error.message}`;
    }
  };
  try {
    const set = await call("GET", `images/${card.record.imageId}/srcset`);
    const image = element("img", { src: set.fallback.src, alt: `${label(card.record)}: click its focal point`, "data-testid": "focus-image" });
    const round = (v) => Math.round(Math.min(Math.max(v, 0), 1) * 1000) / 1000;
    image.addEventListener("click", (e) => {
      send({ x: round(e.offsetX / image.clientWidth), y: round(e.offsetY / image.clientHeight) });
    });
    // from the keyboard: the arrows move the marker (5% a press, 1% with Shift), Enter or Space sets the point
    frame.onkeydown = (e) => {
      const step = e.shiftKey ? 0.01 : 0.05;
      const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
      if (moves[e.key]) {
        pending = { x: round(pending.x + moves[e.key][0]), y: round(pending.y + moves[e.key][1]) };
        place(pending);
      } else if (e.key === "Enter" || e.key === " ") {
        send(pending);
      } else {
        return;
      }
      e.preventDefault();
    };
    frame.replaceChildren(image, marker);
    place(card.record.focalPoint);
    status.textContent = card.record.focalPoint ? "" : "No focal point: each crop finds the subject itself.";
    $("#focus-clear").onclick = () => send(null);
  } catch (error) {
    status.textContent = `No picture: ${error.message}`;
  }
}

// ---------------------------------------------------------------- trace

const seconds = (ms) => (ms === null || ms === undefined ? "–" : `${(ms / 1000).toFixed(3)} s`);

async function showTrace(record) {
  const body = $("#trace-body");
  body.replaceChildren(element("p", { text: "Loading…" }));
  $("#trace").showModal();
  try {
    const trace = await call("GET", `images/${record.imageId}/trace`);
    if (!trace.executions.length) {
      body.replaceChildren(element("p", { text: "No execution yet: the upload has not arrived." }));
      return;
    }
    body.replaceChildren(...trace.executions.map((execution) => {
      const rows = execution.states.map((state) => element("tr", {},
        element("td", { text: state.name }), element("td", { text: state.type }),
        element("td", { text: state.start.slice(11, 23) }), element("td", { class: "num", text: seconds(state.durationMs) }),
        element("td", { class: "num", text: String(state.retries) }), element("td", { text: state.errors.join(", ") || "" })));
      const head = element("tr", {}, ...["State", "Type", "Start (UTC)", "Duration", "Retries", "Errors"].map((h) => element("th", { scope: "col", text: h })));
      return element("section", {},
        element("h3", { text: `${execution.name}: ${execution.status}${execution.error ? ` (${execution.error})` : ""}, ${seconds(execution.durationMs)}` }),
        element("table", { "data-testid": "trace-table" }, element("thead", {}, head), element("tbody", {}, ...rows)));
    }));
  } catch (error) {
    body.replaceChildren(element("p", { class: "reason", text: `No trace: ${error.message}` }));
  }
}

// ---------------------------------------------------------------- wiring

async function init() {
  localStorage.removeItem("imgpipe.apiKey"); // kept there by earlier versions: every user of the browser saw it
  const key = $("#api-key");
  key.value = apiKey();
  const save = () => { sessionStorage.setItem("imgpipe.apiKey", key.value.trim()); location.reload(); };
  key.addEventListener("change", save);
  $("#settings-form").addEventListener("submit", (e) => { e.preventDefault(); save(); });
  const input = $("#file-input");
  input.addEventListener("change", () => { uploadAll(input.files); input.value = ""; });
  const zone = $("#drop-zone");
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); uploadAll(e.dataTransfer.files); });
  $("#more").addEventListener("click", loadPage);
  $("#sign-out").addEventListener("click", async () => {
    const current = session();
    if (current && current.refreshToken && config.signIn === "cognito") {
      // the refresh token stops working at once; the ID token in hand expires on its own (15 minutes at most)
      await cognito("RevokeToken", { Token: current.refreshToken, ClientId: config.clientId }).catch(() => {});
    }
    signedOut("");
  });
  try {
    const response = await fetch(new URL("web/config.json", API));
    config = await response.json();
  } catch {
    signedOut("The sign-in settings could not be read: reload the page.");
    return;
  }
  const byToken = config.signIn !== "cognito";
  for (const p of document.querySelectorAll(".with-password")) p.hidden = byToken;
  for (const p of document.querySelectorAll(".with-password input")) p.required = !byToken;
  $(".with-token").hidden = !byToken;
  $("#sign-in-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("#sign-in-error").textContent = "";
    const form = new FormData(e.target);
    try {
      if (byToken) {
        const token = String(form.get("token")).trim();
        const claims = tokenSubject(token);
        keep({ token, expiresAt: (claims.exp || 0) * 1000, username: claims.email || claims.sub });
      } else {
        await signIn(String(form.get("username")).trim(), String(form.get("password")));
      }
      e.target.reset();
      signedIn();
    } catch (error) {
      $("#sign-in-error").textContent = error.code === "NotAuthorizedException" || error.code === "UserNotFoundException"
        ? "Wrong user name or password." : `Could not sign in: ${error.message}`;
    }
  });
  if (session()) signedIn();
  else signedOut("");
}

init();
