// The review pages' signing code: a plain ES module, no framework, served by the platform
// service under a strict CSP (no inline script).
//
// Rule: the reviewer's Ed25519 private key is made here by WebCrypto as NON-EXTRACTABLE and
// kept in this browser's IndexedDB (CryptoKey objects are structured-cloneable, so the key
// itself is stored, never its bytes); only the raw public key is sent. What is signed is the
// exact canonical text the service returned for this decision, shown to the reviewer first;
// the service refuses anything else. Every POST carries JupyterHub's XSRF token.

const DB_NAME = "idsp-review";
const STORE = "keys";

const app = document.getElementById("review-app");
const api = app ? app.dataset.api : "";
const user = app ? app.dataset.user : "";
const xsrf = document.querySelector('meta[name="idsp-xsrf"]')?.content || "";

function openDb() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function store(mode, fn) {
  const db = await openDb();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const req = fn(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(req.result);
    tx.onerror = () => reject(tx.error);
  });
}

// One key per hub user in this browser (a shared computer may hold several).
const loadKey = () => store("readonly", (s) => s.get(user));
const saveKey = (record) => store("readwrite", (s) => s.put(record, user));

function b64(buffer) {
  return btoa(String.fromCharCode(...new Uint8Array(buffer)));
}

async function call(method, path, body) {
  const init = { method, credentials: "same-origin", headers: { "X-XSRFToken": xsrf } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(api + path, init);
  const data = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) {
    const error = new Error(data.error || `HTTP ${response.status}`);
    error.fix = data.fix || "";
    throw error;
  }
  return data;
}

function say(element, text, kind = "") {
  element.className = kind ? `idsp-notice idsp-notice--${kind}` : "idsp-notice";
  element.replaceChildren();
  const p = document.createElement("p");
  p.textContent = text;
  element.append(p);
  element.hidden = false;
}

// --- enrol ---------------------------------------------------------------------------

const FLASH = "idsp-enrol-result";

async function enrolPage() {
  const state = document.getElementById("key-state");
  const button = document.getElementById("enrol");
  const result = document.getElementById("enrol-result");
  const record = await loadKey().catch(() => undefined);
  state.textContent = record ? `aanwezig (openbare sleutel ${record.publicKey.slice(0, 12)}…)` : "geen";
  // A browser that holds a key already replaces it (the old one is revoked when the new one
  // is approved): the button says so, so nobody makes a second key by clicking twice.
  if (record) button.textContent = "Vervang de sleutel in deze browser door een nieuwe";
  const flash = sessionStorage.getItem(FLASH);
  if (flash) {
    sessionStorage.removeItem(FLASH);
    say(result, flash);
  }
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
      const publicKey = b64(await crypto.subtle.exportKey("raw", pair.publicKey));
      const entry = await call("POST", "reviewers/enrol", { public_key: publicKey, source: "webcrypto" });
      await saveKey({ privateKey: pair.privateKey, publicKey, created: new Date().toISOString() });
      const key = entry.keys.find((k) => k.public_key === publicKey);
      // the page is drawn again by the service, so "Uw aanmelding" shows the pending key
      sessionStorage.setItem(FLASH, `Aangemeld met sleutel ${key ? key.key_id : ""}. Een beheerder keurt uw aanmelding goed en kent uw rol toe; daarna kunt u ondertekenen.`);
      location.reload();
      return;
    } catch (error) {
      const hint = error.name === "NotSupportedError" ? " Deze browser kent Ed25519 niet; gebruik een recente Chromium, Chrome, Edge of Firefox." : "";
      say(result, `Aanmelden is niet gelukt: ${error.message}.${hint} ${error.fix || ""}`, "error");
    } finally {
      button.disabled = false;
    }
  });
}

// --- review and decide ---------------------------------------------------------------

const LABELS = {
  case_id: "Zaak", decision: "Besluit", purpose: "Doel", role: "Rol", reviewer: "Beoordelaar",
  content_sha256: "Inhoudshash (sha256)", submission_id: "Indiening", at: "Tijdstip", expires_at: "Geldig tot",
  comment: "Reden",
};
const STATUS = {
  draft: "concept", in_review: "ter beoordeling", approved: "goedgekeurd", rejected: "afgewezen",
  expired: "verlopen", revoked: "ingetrokken",
};
const WORDS = { approve: "goedkeuren", reject: "afwijzen", revoke: "intrekken", development: "ontwikkeling", use: "gebruik" };

function summary(payload) {
  const rows = Object.keys(LABELS).filter((k) => payload[k] !== undefined && payload[k] !== "")
    .map((k) => [LABELS[k], WORDS[payload[k]] || String(payload[k])]);
  const b = payload.bindings || {};
  for (const [name, md5] of Object.entries(b.data || {})) rows.push([`Data: ${name}`, `md5 ${md5}`]);
  if (b.code) rows.push(["Code (src/, dvc.yaml, params.yaml)", `sha256 ${b.code}`]);
  if (b.params) rows.push(["Parameters (params.yaml)", `sha256 ${b.params}`]);
  rows.push(["Punten en bewijsstukken", `${Object.keys(payload.items || {}).length} punten, ${Object.keys(payload.evidence || {}).length} bewijsstukken (elk met hash)`]);
  const body = document.querySelector("#payload-summary tbody");
  body.replaceChildren(...rows.map(([label, value]) => {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = label;
    const td = document.createElement("td");
    td.textContent = value;
    tr.append(th, td);
    return tr;
  }));
}

async function reviewPage() {
  const form = document.getElementById("decide-form");
  if (!form) return;
  const box = document.getElementById("payload-box");
  const result = document.getElementById("decide-result");
  const sign = document.getElementById("sign");
  let shown = null;
  const flash = sessionStorage.getItem(FLASH);
  if (flash) {
    sessionStorage.removeItem(FLASH);
    say(result, flash);
    result.scrollIntoView();
  }
  form.addEventListener("input", () => { shown = null; box.hidden = true; });
  document.getElementById("show-payload").addEventListener("click", async () => {
    const record = await loadKey().catch(() => undefined);
    if (!record) {
      say(result, "Deze browser heeft geen sleutel van u. Meld u aan op de pagina 'Mijn sleutel en aanmelding'.", "error");
      return;
    }
    const kind = form.elements.kind.value;
    const query = new URLSearchParams({
      kind, purpose: app.dataset.purpose, role: form.elements.role.value,
      comment: form.elements.reason.value, public_key: record.publicKey,
    });
    try {
      shown = await call("GET", `cases/${app.dataset.case}/decisions/payload?${query}`);
      document.getElementById("payload").textContent = JSON.stringify(shown.payload, null, 2);
      summary(shown.payload);
      box.hidden = false;
      result.hidden = true;
      sign.focus();
    } catch (error) {
      say(result, `${error.message}. ${error.fix || ""}`, "error");
    }
  });
  sign.addEventListener("click", async () => {
    if (!shown) return;
    sign.disabled = true;
    try {
      const record = await loadKey();
      const bytes = new TextEncoder().encode(shown.canonical);
      const signature = b64(await crypto.subtle.sign({ name: "Ed25519" }, record.privateKey, bytes));
      const answer = await call("POST", `cases/${app.dataset.case}/decisions`, {
        purpose: app.dataset.purpose, kind: shown.payload.decision, payload: shown.payload, signature,
        reason: form.elements.reason.value,
      });
      // drawn again by the service, so the signatures table and the status show the decision
      sessionStorage.setItem(FLASH, `Vastgelegd (${answer.decision_id}). De checklist is nu: ${STATUS[answer.status] || answer.status}.`);
      location.reload();
      return;
    } catch (error) {
      say(result, `Niet vastgelegd: ${error.message}. ${error.fix || ""}`, "error");
    } finally {
      sign.disabled = false;
    }
  });
}

if (app?.dataset.page === "enrol") enrolPage();
if (app?.dataset.page === "review") reviewPage();
