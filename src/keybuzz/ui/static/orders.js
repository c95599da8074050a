// The Orders page. Everything it shows comes from the JSON API (/api/v1/...), read and changed
// with the session cookie; every change also carries the page's CSRF token. Nothing is made up
// here: a value the API does not have is shown as not known.
"use strict";

const config = JSON.parse(document.getElementById("page-config").textContent);
const API = "/api/v1";
const PAGE_SIZE = 50;
const POLL_MILLISECONDS = 1000;
const LIST_REFRESH_MILLISECONDS = 3000;
const SEARCH_DELAY_MILLISECONDS = 350;
const MIN_SEARCH_LENGTH = 3;
const DEFAULT_SORT = "-orderDate";
const FILTER_NAMES = ["q", "orderStatus", "deliveryStatus", "savStatus", "slaStatus", "from", "to", "sort"];
const ONE_TIME_PARAMETERS = ["lang", "amazon", "signedOut"];
const ACTIVE_JOB = new Set(["QUEUED", "RUNNING"]);
const FIRST_PAGE_MARK = "orders:first-page-rendered";
const BADGE_COLOURS = {
  orderStatus: {
    PENDING: "gray", CONFIRMED: "blue", SHIPPED: "purple", DELIVERED: "green",
    CANCELLED: "red", RETURNED: "amber",
  },
  deliveryStatus: {
    PREPARING: "gray", SHIPPED: "purple", IN_TRANSIT: "blue", OUT_FOR_DELIVERY: "teal",
    DELIVERED: "green", DELAYED: "amber", LOST: "red",
  },
  savStatus: { NONE: "gray", OPEN: "amber", IN_PROGRESS: "blue", RESOLVED: "green" },
  slaStatus: { OK: "green", AT_RISK: "amber", BREACHED: "red" },
  status: {
    CONNECTED: "green", PENDING: "gray", NEEDS_RECONNECT: "amber", ERROR: "red",
    DISCONNECTED: "gray",
  },
};
const SAV_STATUSES = Object.keys(BADGE_COLOURS.savStatus);
const ADDRESS_LINES = [
  ["name"], ["companyName"], ["addressLine1"], ["addressLine2"], ["addressLine3"],
  ["postalCode", "city"], ["districtOrCounty", "municipality", "stateOrRegion"], ["countryCode"],
  ["phone"],
];

const $ = (id) => document.getElementById(id);
const locale = config.language === "fr" ? "fr-FR" : "en-GB";
const numbers = new Intl.NumberFormat(locale);
const dateTimes = new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" });

// --- Words, numbers, dates --------------------------------------------------------------------

function t(key, fields = {}) {
  const message = config.messages[key] ?? key;
  return message.replace(/\{(\w+)\}/g, (_, name) => String(fields[name] ?? ""));
}

function formatDateTime(iso) {
  return iso ? dateTimes.format(new Date(iso)) : t("detail.noValue");
}

function formatMoney(amount, currency) {
  if (amount === null || amount === undefined) return null;
  try {
    return new Intl.NumberFormat(locale, { style: "currency", currency: currency || "EUR" })
      .format(Number(amount));
  } catch {
    return `${amount} ${currency || ""}`.trim();
  }
}

function formatDuration(seconds) {
  return seconds < 90
    ? t("duration.seconds", { n: seconds })
    : t("duration.minutes", { n: Math.round(seconds / 60) });
}

function statusLabel(field, value) {
  if (value === null || value === undefined) return t("detail.noValue");
  return field === "trackingCode" ? value : t(`${field}.${value}`);
}

// --- The DOM ----------------------------------------------------------------------------------

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...present(children));
  return node;
}

function present(children) {
  return children.flat(Infinity).filter((child) => child !== null && child !== undefined);
}

function fill(node, ...children) {
  node.replaceChildren(...present(children));
}

function badge(kind, value) {
  if (!value) return el("span", { class: "muted", text: t("detail.noValue") });
  const colour = BADGE_COLOURS[kind]?.[value] ?? "gray";
  return el("span", {
    class: `badge badge--${colour}`, "data-field": kind, "data-value": value, text: t(`${kind}.${value}`),
  });
}

function unknown() {
  return el("span", { class: "muted", text: t("list.unknown") });
}

function definitions(rows) {
  return el("dl", {}, rows.filter(([, value]) => value !== null && value !== undefined && value !== "")
    .map(([term, value]) => [el("dt", { text: term }), el("dd", {}, value)]));
}

// --- The API ----------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, problem, retryAfter = null) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code;
    this.title = problem.title || t("error.title");
    this.detail = problem.detail || null;
    this.action = problem.action || null;
    this.retryAfter = retryAfter;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json", "X-Tenant-Id": config.tenant };
  if (method !== "GET") headers[config.csrfHeader] = config.csrfToken;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(API + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, { title: t("error.title"), detail: t("error.network") });
  }
  if (response.status === 401) {
    // The session ended (signed out elsewhere, key revoked): the page shows the sign-in form.
    window.location.reload();
    throw new ApiError(401, { title: t("signIn.expired") });
  }
  const payload = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new ApiError(response.status, payload, Number(response.headers.get("Retry-After")) || null);
  }
  return payload;
}

function problemBox(error, retry) {
  const box = el("div", { class: "notice notice--error", role: "alert" },
    el("strong", { text: error.title }),
    error.detail ? el("p", { text: error.detail }) : null,
    error.action?.message && error.action.message !== error.detail
      ? el("p", { text: error.action.message }) : null);
  if (retry) {
    const button = el("button", { type: "button", class: "button button--quiet", text: t("error.retry") });
    button.addEventListener("click", retry);
    box.append(button);
  }
  return box;
}

// --- Page state -------------------------------------------------------------------------------

const page = {
  connection: undefined, // undefined: not loaded yet; null: none
  job: null,
  watchingJob: false,
  pollTimer: null,
  lastListRefresh: 0,
  detailId: null,
  detailOpener: null,
};
const list = { generation: 0, apiParams: null, cursor: null, pages: 0, count: 0, loaded: false };

function isConnected() {
  return page.connection?.status === "CONNECTED";
}

function jobIsActive() {
  return page.job !== null && ACTIVE_JOB.has(page.job.status);
}

// --- The URL keeps the filters ----------------------------------------------------------------

const filtersForm = $("filters");

function pageParams() {
  const params = new URLSearchParams();
  const data = new FormData(filtersForm);
  for (const name of FILTER_NAMES) {
    const value = String(data.get(name) ?? "").trim();
    if (value && !(name === "sort" && value === DEFAULT_SORT)) params.set(name, value);
  }
  return params;
}

function hasFilters(params) {
  return [...params.keys()].some((name) => name !== "sort");
}

function localMidnight(isoDate, plusDays = 0) {
  const [year, month, day] = isoDate.split("-").map(Number);
  return new Date(year, month - 1, day + plusDays);
}

function toApiParams(params) {
  const query = new URLSearchParams();
  for (const [name, value] of params) {
    if (name === "from") query.set("from", localMidnight(value).toISOString());
    else if (name === "to") query.set("to", localMidnight(value, 1).toISOString());
    else query.set(name, value);
  }
  query.set("limit", String(PAGE_SIZE));
  return query;
}

function pageUrl(extra = {}) {
  const params = pageParams();
  if (page.detailId) params.set("order", page.detailId);
  for (const [name, value] of Object.entries(extra)) params.set(name, value);
  const query = params.toString();
  return `${window.location.pathname}${query ? `?${query}` : ""}`;
}

function updateUrl(push = false) {
  const url = pageUrl();
  if (url !== window.location.pathname + window.location.search) {
    window.history[push ? "pushState" : "replaceState"](null, "", url);
  }
  updateLanguageLink();
}

function updateLanguageLink() {
  const link = $("language-switch");
  const params = new URLSearchParams(window.location.search);
  params.set("lang", link.getAttribute("hreflang"));
  link.href = `?${params}`;
}

function dropOneTimeParameters() {
  const params = new URLSearchParams(window.location.search);
  if (ONE_TIME_PARAMETERS.some((name) => params.has(name))) {
    ONE_TIME_PARAMETERS.forEach((name) => params.delete(name));
    const query = params.toString();
    window.history.replaceState(null, "", `${window.location.pathname}${query ? `?${query}` : ""}`);
  }
}

function fillFormFromUrl() {
  const params = new URLSearchParams(window.location.search);
  for (const name of FILTER_NAMES) {
    const field = filtersForm.elements.namedItem(name);
    field.value = params.get(name) ?? (name === "sort" ? DEFAULT_SORT : "");
  }
}

// --- The list ---------------------------------------------------------------------------------

function listStatus(text) {
  $("list-status").textContent = text;
}

function listMessage(...children) {
  const box = $("list-message");
  fill(box, ...children);
  box.hidden = children.length === 0;
}

async function loadOrders({ quiet = false } = {}) {
  const generation = ++list.generation;
  const params = pageParams();
  const search = params.get("q") ?? "";
  if (search && search.length < MIN_SEARCH_LENGTH) {
    listStatus(t("filters.qTooShort"));
    return;
  }
  const table = $("orders-table");
  if (!quiet) {
    table.setAttribute("aria-busy", "true");
    listStatus(t("list.loading"));
  }
  const query = toApiParams(params);
  try {
    const result = await api("GET", `/orders?${query}`);
    if (generation !== list.generation) return;
    list.apiParams = query;
    list.pages = 1;
    list.loaded = true;
    $("orders-body").replaceChildren(...result.items.map(orderRow));
    list.count = result.items.length;
    showListEnd(result.nextCursor);
    markSelectedRow();
    markFirstPageRendered();
  } catch (error) {
    if (generation !== list.generation) return;
    listStatus(t("error.list"));
    listMessage(problemBox(error, () => loadOrders()));
  } finally {
    if (generation === list.generation) table.removeAttribute("aria-busy");
  }
}

// When the first page of the list was painted, for measuring (bench/bench_ui.py).
function markFirstPageRendered() {
  if (performance.getEntriesByName(FIRST_PAGE_MARK).length) return;
  requestAnimationFrame(() => setTimeout(() => performance.mark(FIRST_PAGE_MARK), 0));
}

async function loadMore() {
  const generation = list.generation;
  const button = $("load-more");
  button.disabled = true;
  const query = new URLSearchParams(list.apiParams);
  query.set("cursor", list.cursor);
  try {
    const result = await api("GET", `/orders?${query}`);
    if (generation !== list.generation) return;
    const rows = result.items.map(orderRow);
    $("orders-body").append(...rows);
    list.pages += 1;
    list.count += rows.length;
    showListEnd(result.nextCursor);
    if (!result.nextCursor && rows.length) rows[0].querySelector("a").focus();
  } catch (error) {
    listMessage(problemBox(error, loadMore));
  } finally {
    button.disabled = false;
  }
}

function showListEnd(nextCursor) {
  list.cursor = nextCursor;
  $("load-more").hidden = !nextCursor;
  listStatus(t(nextCursor ? "list.countMore" : "list.count", { count: numbers.format(list.count) }));
  if (list.count === 0) listMessage(...emptyState());
  else listMessage();
}

function emptyState() {
  if (hasFilters(pageParams())) {
    const clear = el("a", { href: window.location.pathname, class: "button button--quiet", text: t("filters.clear") });
    clear.addEventListener("click", clearFilters);
    return [el("p", {}, el("strong", { text: t("empty.noMatch") })), el("p", { text: t("empty.noMatchNext") }), clear];
  }
  if (jobIsActive()) return [el("p", {}, el("strong", { text: t("empty.importing") }))];
  if (page.connection !== undefined && !isConnected()) {
    return [el("p", {}, el("strong", { text: t("empty.notConnected") })), el("p", { text: t("empty.notConnectedNext") })];
  }
  return [el("p", {}, el("strong", { text: t("empty.noImport") })), el("p", { text: t("empty.noImportNext") })];
}

function orderRow(order) {
  const reference = order.orderRef || order.externalOrderId;
  const link = el("a", {
    href: `?${new URLSearchParams({ ...Object.fromEntries(pageParams()), order: order.id })}`,
    class: "order-link",
    "data-order-id": order.id,
    text: reference,
  });
  link.addEventListener("click", (event) => {
    if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    openDetail(order.id, link);
  });
  const marketplace = config.marketplaces[order.marketplaceId];
  const total = formatMoney(order.totalAmount, order.currency);
  return el("tr", { "data-order-id": order.id },
    el("td", {}, link),
    el("td", {}, el("time", { datetime: order.orderDate, text: formatDateTime(order.orderDate) })),
    el("td", { class: "customer" }, order.customerName ?? unknown()),
    el("td", { class: "optional" }, marketplace ? `${marketplace.name} · ${marketplace.country}` : order.marketplace),
    el("td", { class: "numeric" }, total ?? unknown()),
    el("td", {}, badge("orderStatus", order.orderStatus)),
    el("td", { class: "optional" }, badge("deliveryStatus", order.deliveryStatus)),
    el("td", {}, badge("savStatus", order.savStatus)),
    el("td", { class: "optional" }, badge("slaStatus", order.slaStatus)));
}

function markSelectedRow() {
  for (const row of $("orders-body").rows) {
    row.classList.toggle("is-selected", row.dataset.orderId === page.detailId);
  }
}

let searchTimer = null;

function applyFilters() {
  clearTimeout(searchTimer);
  updateUrl();
  loadOrders();
}

function clearFilters(event) {
  event.preventDefault();
  filtersForm.reset();
  for (const name of FILTER_NAMES) {
    filtersForm.elements.namedItem(name).value = name === "sort" ? DEFAULT_SORT : "";
  }
  applyFilters();
  $("filter-q").focus();
}

function wireFilters() {
  filtersForm.addEventListener("submit", (event) => {
    event.preventDefault();
    applyFilters();
  });
  filtersForm.addEventListener("change", (event) => {
    if (event.target.name !== "q") applyFilters();
  });
  $("filter-q").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(applyFilters, SEARCH_DELAY_MILLISECONDS);
  });
  $("filters-clear").addEventListener("click", clearFilters);
  $("load-more").addEventListener("click", loadMore);
}

// --- The detail -------------------------------------------------------------------------------

async function openDetail(orderId, opener) {
  page.detailId = orderId;
  page.detailOpener = opener;
  updateUrl(true);
  markSelectedRow();
  const panel = $("detail");
  panel.hidden = false;
  $("detail-title").textContent = t("detail.loading");
  $("detail-status").textContent = "";
  $("detail-body").replaceChildren();
  panel.setAttribute("aria-busy", "true");
  try {
    const [order, events] = await Promise.all([
      api("GET", `/orders/${orderId}`),
      api("GET", `/orders/${orderId}/events`),
    ]);
    if (page.detailId !== orderId) return;
    renderDetail(order, events.items);
  } catch (error) {
    if (page.detailId !== orderId) return;
    $("detail-title").textContent = t("error.title");
    $("detail-body").replaceChildren(problemBox(error, () => openDetail(orderId, opener)));
  } finally {
    panel.removeAttribute("aria-busy");
    if (page.detailId === orderId) $("detail-title").focus();
  }
}

function closeDetail() {
  page.detailId = null;
  $("detail").hidden = true;
  updateUrl(true);
  markSelectedRow();
  const opener = page.detailOpener;
  page.detailOpener = null;
  if (opener && opener.isConnected) opener.focus();
  else $("orders-title").focus();
}

function renderDetail(order, events) {
  const reference = order.orderRef || order.externalOrderId;
  $("detail-title").textContent = t("detail.title", { ref: reference });
  const marketplace = config.marketplaces[order.marketplaceId];
  fill($("detail-body"),
    el("div", { class: "badges" },
      badge("orderStatus", order.orderStatus), badge("deliveryStatus", order.deliveryStatus),
      badge("savStatus", order.savStatus), badge("slaStatus", order.slaStatus)),
    order.enrichedAt ? null : el("p", { class: "notice notice--warning", text: t("detail.notEnriched") }),
    definitions([
      [t("column.date"), formatDateTime(order.orderDate)],
      [t("detail.customer"), order.customerName ?? unknown()],
      ["E-mail", order.customerEmail],
      [t("column.marketplace"), marketplace ? `${marketplace.name} · ${marketplace.country}` : order.marketplace],
      [t("column.total"), formatMoney(order.totalAmount, order.currency) ?? unknown()],
      [t("detail.fulfillment"), order.fulfillmentChannel],
      [t("detail.externalUpdatedAt"), formatDateTime(order.externalUpdatedAt)],
    ]),
    savForm(order),
    el("h3", { text: t("detail.items") }),
    itemsTable(order),
    el("h3", { text: t("detail.address") }),
    addressBlock(order.shippingAddress),
    el("h3", { text: t("detail.deadlines") }),
    definitions([
      [t("detail.shipBy"), formatDateTime(order.latestShipDate)],
      [t("detail.deliverBy"), formatDateTime(order.latestDeliveryDate)],
      [t("detail.shippedAt"), order.shippedAt ? formatDateTime(order.shippedAt) : null],
      [t("detail.deliveredAt"), order.deliveredAt ? formatDateTime(order.deliveredAt) : null],
    ]),
    el("h3", { text: t("detail.tracking") }),
    definitions([
      [t("detail.carrier"), order.carrier ?? t("detail.noValue")],
      [t("detail.trackingCode"), order.trackingCode ?? t("detail.noValue")],
    ]),
    el("h3", { text: t("detail.timeline") }),
    timeline(events),
  );
}

function itemsTable(order) {
  if (!order.items.length) return el("p", { class: "muted", text: t("detail.noItems") });
  const headers = [t("detail.itemTitle"), t("detail.quantity"), t("detail.unitPrice")];
  return el("table", { class: "items" },
    el("thead", {}, el("tr", {},
      headers.map((label, index) => el("th", { scope: "col", class: index ? "numeric" : null, text: label })))),
    el("tbody", {}, order.items.map((item) => el("tr", {},
      el("td", {},
        el("span", { class: "item-title", text: item.title ?? t("detail.noValue") }),
        el("span", { class: "item-codes muted" },
          `${t("detail.sku")} ${item.sku ?? t("detail.noValue")} · ${t("detail.asin")} ${item.asin ?? t("detail.noValue")}`)),
      el("td", { class: "numeric" }, String(item.quantity)),
      el("td", { class: "numeric" }, formatMoney(item.unitPrice, order.currency) ?? unknown())))));
}

function addressBlock(address) {
  if (!address) return el("p", { class: "muted", text: t("detail.noAddress") });
  const lines = ADDRESS_LINES
    .map((names) => names.map((name) => address[name]).filter(Boolean).join(" "))
    .filter(Boolean);
  return el("p", { class: "address", text: lines.join("\n") });
}

function timeline(events) {
  if (!events.length) return el("p", { class: "muted", text: t("detail.noEvents") });
  return el("ol", { class: "timeline" }, events.map((event) => el("li", {},
    el("time", { datetime: event.occurredAt, text: formatDateTime(event.occurredAt) }),
    t("detail.event", {
      field: t(`field.${event.field}`),
      from: statusLabel(event.field, event.from),
      to: statusLabel(event.field, event.to),
    }),
    " ",
    el("span", { class: "muted", text: t("detail.eventSource", { source: t(`source.${event.source}`) }) }))));
}

function savForm(order) {
  const select = el("select", { id: "detail-sav", name: "savStatus" },
    SAV_STATUSES.map((value) => el("option", { value, selected: value === order.savStatus, text: t(`savStatus.${value}`) })));
  const save = el("button", { type: "submit", class: "button", text: t("detail.savSave") });
  const refresh = el("button", { type: "button", class: "button button--quiet", id: "detail-refresh", text: t("detail.refresh") });
  const form = el("form", { class: "actions", id: "sav-form" },
    el("div", { class: "field" }, el("label", { for: "detail-sav", text: t("detail.sav") }), select),
    save, refresh);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    await changeOrder(save, () => api("PATCH", `/orders/${order.id}`, { savStatus: select.value }), "detail.savSaved");
  });
  refresh.addEventListener("click", () =>
    changeOrder(refresh, () => api("POST", `/orders/${order.id}/refresh`), "detail.refreshed"));
  return form;
}

async function changeOrder(button, request, doneMessage) {
  const status = $("detail-status");
  button.disabled = true;
  status.textContent = "";
  try {
    const order = await request();
    const events = await api("GET", `/orders/${order.id}/events`);
    if (page.detailId !== order.id) return;
    renderDetail(order, events.items);
    replaceRow(order);
    $("detail-status").textContent = t(doneMessage);
  } catch (error) {
    if (error.code === "amazon_quota_exhausted") {
      status.replaceChildren(problemBox({ title: t("detail.quota", { seconds: error.retryAfter ?? 1 }) }));
    } else {
      status.replaceChildren(problemBox(error));
      if (error.code?.startsWith("amazon_")) loadConnection();
    }
  } finally {
    button.disabled = false;
  }
}

function replaceRow(order) {
  const row = $("orders-body").querySelector(`tr[data-order-id="${CSS.escape(order.id)}"]`);
  if (!row) return;
  const fresh = orderRow(order);
  row.replaceWith(fresh);
  page.detailOpener = fresh.querySelector("a");
  markSelectedRow();
}

function wireDetail() {
  $("detail-close").addEventListener("click", closeDetail);
  $("detail").addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeDetail();
  });
}

// --- The Amazon connection --------------------------------------------------------------------

async function loadConnection() {
  const section = $("connection");
  section.setAttribute("aria-busy", "true");
  try {
    const { items } = await api("GET", "/marketplaces");
    page.connection = items.find((connection) => connection.marketplace === "amazon") ?? null;
    renderConnection();
  } catch (error) {
    $("connection-body").replaceChildren(problemBox(error, loadConnection));
  } finally {
    section.removeAttribute("aria-busy");
  }
  renderJob();
  if (list.loaded && list.count === 0) listMessage(...emptyState());
}

function renderConnection() {
  const connection = page.connection;
  const section = $("connection");
  const action = connection === null ? "connect" : connection.action?.kind ?? null;
  section.classList.toggle("panel--ok", isConnected());
  section.classList.toggle("panel--warning", action === "reconnect" || action === "connect");
  section.classList.toggle("panel--error", connection?.status === "ERROR");
  fill($("connection-body"), connectionLines(connection));
  $("connect-form").hidden = action !== "connect" && action !== "reconnect";
  $("connect-button").textContent = t(action === "reconnect" ? "connection.reconnect" : "connection.connect");
  $("check-button").hidden = action !== "retry";
  if (connection?.region) $("connect-region").value = connection.region;
}

function connectionLines(connection) {
  if (connection === null) {
    return [el("p", { class: "connection-line" }, el("strong", { text: t("connection.none") })),
      el("p", { class: "connection-line", text: t("connection.noneNext") })];
  }
  const lines = [el("p", { class: "connection-line" }, badge("status", connection.status), " ",
    connection.status === "CONNECTED" ? t("connection.connected") : connection.statusReason ?? "")];
  if (connection.action?.message && connection.action.message !== connection.statusReason) {
    lines.push(el("p", { class: "connection-line", text: connection.action.message }));
  }
  const details = [];
  if (connection.marketplaces.length) {
    details.push(t("connection.marketplaces", {
      list: connection.marketplaces.map((marketplace) => marketplace.countryCode ?? marketplace.id).join(", "),
    }));
  }
  if (connection.sellingPartnerId) details.push(t("connection.seller", { id: connection.sellingPartnerId }));
  if (details.length) lines.push(el("p", { class: "connection-line muted", text: details.join(" · ") }));
  const freshness = [connection.syncedThrough
    ? t("connection.freshAsOf", { time: formatDateTime(connection.syncedThrough) })
    : t("connection.neverSynced")];
  if (connection.lastSyncAt) freshness.push(t("connection.lastSync", { time: formatDateTime(connection.lastSyncAt) }));
  if (connection.nextSyncAt) freshness.push(t("connection.nextSync", { time: formatDateTime(connection.nextSyncAt) }));
  if (connection.status === "CONNECTED") {
    lines.push(el("p", { class: "connection-line", id: "connection-freshness", text: freshness.join(" · ") }));
  }
  return lines;
}

async function connectAmazon(event) {
  event.preventDefault();
  const button = $("connect-button");
  button.disabled = true;
  const returnPath = pageUrl({ amazon: "connected" });
  try {
    const started = await api("POST", "/marketplaces/amazon/oauth/start", {
      region: $("connect-region").value,
      returnPath,
    });
    $("connection-body").append(el("p", { class: "connection-line", role: "status", text: t("connection.redirecting") }));
    window.location.assign(started.authUrl);
  } catch (error) {
    $("connection-body").append(problemBox(error));
    button.disabled = false;
  }
}

async function checkConnection() {
  const button = $("check-button");
  button.disabled = true;
  try {
    page.connection = await api("POST", "/marketplaces/amazon/check");
    renderConnection();
  } catch (error) {
    $("connection-body").append(problemBox(error));
  } finally {
    button.disabled = false;
    renderJob();
  }
}

// --- Backfill ---------------------------------------------------------------------------------

async function loadBackfills() {
  try {
    const { items } = await api("GET", "/orders/backfill");
    page.job = items[0] ?? null;
    page.watchingJob = jobIsActive();
    renderJob();
    if (jobIsActive()) startPolling();
  } catch (error) {
    $("backfill-summary").replaceChildren(problemBox(error, loadBackfills));
  }
}

async function startBackfill(event) {
  event.preventDefault();
  const days = $("backfill-days");
  if (!days.checkValidity()) {
    days.reportValidity();
    return;
  }
  const purge = $("backfill-purge").checked;
  if (purge && !window.confirm(t("backfill.purgeConfirm"))) return;
  const button = $("backfill-start");
  button.disabled = true;
  try {
    page.job = await api("POST", "/orders/backfill", { days: Number(days.value), purge });
    page.watchingJob = true;
    $("backfill-purge").checked = false;
    renderJob();
    startPolling();
    if (purge) loadOrders({ quiet: true });
  } catch (error) {
    $("backfill-summary").replaceChildren(problemBox(error));
    if (error.code?.startsWith("amazon_")) loadConnection();
    renderJob();
  }
}

async function cancelBackfill() {
  const button = $("backfill-cancel");
  button.disabled = true;
  try {
    page.job = await api("POST", `/orders/backfill/${page.job.id}/cancel`);
    renderJob();
  } catch (error) {
    $("backfill-summary").replaceChildren(problemBox(error));
  } finally {
    button.disabled = false;
  }
}

function startPolling() {
  if (page.pollTimer === null) page.pollTimer = setInterval(pollJob, POLL_MILLISECONDS);
}

async function pollJob() {
  try {
    page.job = await api("GET", `/orders/backfill/${page.job.id}`);
  } catch {
    return; // asked again at the next tick
  }
  renderJob();
  if (!jobIsActive()) {
    clearInterval(page.pollTimer);
    page.pollTimer = null;
    loadOrders({ quiet: true });
    loadConnection();
  } else if (Date.now() - page.lastListRefresh >= LIST_REFRESH_MILLISECONDS && listCanRefresh()) {
    // The list fills as orders arrive, unless the agent is reading further pages of it.
    page.lastListRefresh = Date.now();
    loadOrders({ quiet: true });
  }
}

function listCanRefresh() {
  return list.pages <= 1 && !$("orders-body").contains(document.activeElement);
}

function renderJob() {
  const job = page.job;
  const active = jobIsActive();
  $("backfill-start").disabled = active || !isConnected();
  $("backfill-hint").hidden = page.connection === undefined || isConnected();
  $("backfill-progress").hidden = !(job && page.watchingJob);
  $("backfill-cancel").hidden = !active;
  if (!job) return;
  if (page.watchingJob) renderProgress(job);
  $("backfill-summary").textContent = active ? "" : jobSummary(job);
}

function renderProgress(job) {
  const percent = Math.floor(job.progress * 100);
  $("backfill-phase").textContent = jobIsActive()
    ? `${t(`phase.${job.phase}`)} (${t(`job.${job.status}`)})`
    : t(`ended.${job.status}`);
  $("backfill-bar").value = percent;
  $("backfill-percent").textContent = t("backfill.percent", { percent });
  const parts = [t("backfill.counts", {
    stored: numbers.format(job.ordersStored),
    items: numbers.format(job.itemsStored),
    enriched: numbers.format(job.ordersEnriched),
  })];
  if (job.quarantined) parts.push(t("backfill.quarantined", { count: numbers.format(job.quarantined) }));
  if (jobIsActive()) {
    parts.push(job.etaSeconds === null ? t("backfill.etaUnknown") : t("backfill.eta", { duration: formatDuration(job.etaSeconds) }));
  }
  $("backfill-counts").textContent = parts.join(" · ");
}

function jobSummary(job) {
  const summary = t("backfill.last", {
    days: job.days,
    status: t(`job.${job.status}`),
    stored: numbers.format(job.ordersStored),
    time: formatDateTime(job.finishedAt ?? job.createdAt),
  });
  return job.status === "FAILED" && job.errorMessage
    ? `${summary} ${t("backfill.failedBecause", { message: job.errorMessage })}`
    : summary;
}

// --- Start ------------------------------------------------------------------------------------

function restoreFromUrl() {
  const before = pageParams().toString();
  fillFormFromUrl();
  updateLanguageLink();
  if (pageParams().toString() !== before) loadOrders();
  const orderId = new URLSearchParams(window.location.search).get("order");
  if (orderId && orderId !== page.detailId) openDetail(orderId, null);
  else if (!orderId && page.detailId) {
    page.detailId = null;
    $("detail").hidden = true;
    markSelectedRow();
  }
}

function start() {
  dropOneTimeParameters();
  updateLanguageLink();
  wireFilters();
  wireDetail();
  $("connect-form").addEventListener("submit", connectAmazon);
  $("check-button").addEventListener("click", checkConnection);
  $("backfill-form").addEventListener("submit", startBackfill);
  $("backfill-cancel").addEventListener("click", cancelBackfill);
  window.addEventListener("popstate", restoreFromUrl);
  loadConnection();
  loadBackfills();
  loadOrders();
  const orderId = new URLSearchParams(window.location.search).get("order");
  if (orderId) openDetail(orderId, null);
}

start();
