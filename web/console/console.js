// The ivsrt web console: stages, sessions, participants and their events,
// the storage configurations recordings go to, the public keys of
// self-signed participant tokens, the ingest configurations RTMP(S)
// encoders publish with, the encoder configurations compositions
// encode with, and the compositions, read through the
// ivs-realtime API of this server with SigV4-signed requests, as the AWS
// CLI reads them; and the delivery of the event
// stream to its sinks, with the dead letters to redrive, read through the
// server's delivery API, signed the same way. Polled every two seconds.
// Participants' recordings play in the page, their objects read signed
// from the server's recordings endpoint.

import { signRequest } from "/console/sigv4.js";
import { playRecording, recordedSegments } from "/console/player.js";

const pollMs = 2000;
const deadLetterPage = 50; // dead letters read per page
const recordingsPath = "/v1/recordings/"; // + bucket + "/" + key
const deliveryPaths = {
  sinks: "/v1/events/sinks",
  deadLetters: "/v1/events/dead-letters",
  redrive: "/v1/events/dead-letters/redrive",
};
const credentialsKey = "ivsrt.console.credentials";
// In --dev the server accepts any well-formed signature.
const devCredentials = { accessKeyId: "AKIDIVSRTDEVCONSOLE0", secretAccessKey: "ivsrt-dev-console-placeholder-secret" };
const authErrors = new Set([
  "UnrecognizedClientException", "InvalidSignatureException", "IncompleteSignatureException",
  "MissingAuthenticationTokenException", "AccessDeniedException",
]);

const $ = (id) => document.getElementById(id);

let config = { region: "us-east-1", dev: false };
let credentials = null;
let pollTimer = 0;
let polling = null; // the refresh in flight
let pollAgain = false;
let actionError = ""; // what the last action failed with, shown until the next one

// What is selected, kept in the URL's fragment:
// #tab=delivery&stage=...&session=...&participant=... (tab is empty for the
// stages, "storage" for the storage configurations, "keys" for the public
// keys, "ingest" for the ingest configurations, "encoders" for the encoder
// configurations, "compositions" for the compositions; composition is the
// id of the composition shown there).
const selectionKeys = ["tab", "stage", "session", "participant", "composition"];
const selection = { tab: "", stage: "", session: "", participant: "", composition: "" };
const tabs = new Set(["", "delivery", "storage", "keys", "ingest", "encoders", "compositions"]);
// What the last refresh read.
const view = { stages: [], live: new Map(), sessions: [], participants: [], events: [], participant: null, replicas: [] };
// Where each participant of the session is recorded, by participant id:
// {state, bucket, prefix, segments}; read with GetParticipant when its
// recording state changes (ListParticipants gives the state alone).
// segments is how many a FAILED recording's playlist lists.
const recordings = { session: "", byParticipant: new Map() };
// The protocol of each RTMP(S) encoder of the session, by participant id:
// {state, protocol}; ListParticipants gives none, so it is read with
// GetParticipant when the encoder's state changes.
const encoders = { session: "", byParticipant: new Map() };
// The recording playing: {participantId, session, bucket, prefix, player}.
let playing = null;
// What the last refresh of the storage tab read.
const storage = { loaded: false, configurations: [] };
// What the last refresh of the public keys tab read; ListPublicKeys gives
// no fingerprint, so each key's is read once with GetPublicKey.
const publicKeys = { loaded: false, keys: [], fingerprints: new Map() };
// What the last refresh of the encoders tab read. ListEncoderConfigurations
// gives no video, so each configuration's is read once with
// GetEncoderConfiguration: a configuration never changes.
const encoderConfigs = { loaded: false, configurations: [], videos: new Map() };
// What the last refresh of the compositions tab read: the compositions,
// newest first, of the stage filtered by (its ARN, "" for all); the stages
// and storage configurations the start form offers (the encoder
// configurations are encoderConfigs'); and each composition as
// GetComposition gave it, by ARN, read once: its layout and its
// destinations' configurations never change, and the list has their
// states and times.
const compositions = { loaded: false, list: [], stage: "", stages: [], storage: [], details: new Map() };
// What the last refresh of the ingest tab read: the configurations (no
// stream keys: ListIngestConfigurations gives none) and the stages they
// may name.
const ingest = { loaded: false, configurations: [], stages: [], readAt: 0 };
// The ARN of the ingest configuration whose stream keys #ingest-key shows,
// "" for none. The keys themselves are only in that card's fields: never
// in the URL, the rows, or anything the refresh keeps. shownAt is when
// they were shown: a list read before may not have the configuration yet.
let shownKey = "";
let shownAt = 0;
// What the last refresh of the delivery tab read. pages is how many pages
// of dead letters to read: one, and one more for each "Load more".
const delivery = { loaded: false, sinks: [], deadLetters: [], nextToken: "", pages: 1, sink: "" };

// --- the API ----------------------------------------------------------

class APIError extends Error {
  constructor(code, message, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

// api calls an operation of the ivs-realtime API.
function api(operation, input = {}) {
  return request("POST", "/" + operation, input);
}

// request sends a signed request to path (with its query) and returns the
// JSON answer; input, when given, is sent as the JSON body.
async function request(method, path, input) {
  const url = location.origin + path;
  const body = input === undefined ? "" : JSON.stringify(input);
  const signed = await signRequest({
    method, url, body, region: config.region, service: "ivs",
    accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey,
  });
  let res;
  try {
    res = await fetch(url, {
      method, cache: "no-store",
      ...(input === undefined ? { headers: signed.headers } : { body, headers: { ...signed.headers, "Content-Type": "application/json" } }),
    });
  } catch (err) {
    throw new APIError("NetworkError", "The server cannot be reached: " + (err.message || err), 0);
  }
  let data = {};
  try {
    data = await res.json();
  } catch {
    // not JSON
  }
  if (!res.ok) {
    const code = (res.headers.get("x-amzn-ErrorType") || "").split(":")[0] || "HTTP " + res.status;
    throw new APIError(code, data.message || data.exceptionMessage || res.statusText, res.status);
  }
  return data;
}

// getObject reads the object at key of a recording's bucket through the
// server's recordings endpoint, signed as API calls are.
async function getObject(bucket, key) {
  const url = location.origin + recordingPath(bucket, key);
  const signed = await signRequest({
    method: "GET", url, body: "", region: config.region, service: "ivs",
    accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey,
  });
  let res;
  try {
    res = await fetch(url, { cache: "no-store", headers: signed.headers });
  } catch (err) {
    throw new APIError("NetworkError", "The server cannot be reached: " + (err.message || err), 0);
  }
  if (!res.ok) {
    let data = {};
    try {
      data = await res.json();
    } catch {
      // not JSON
    }
    const code = (res.headers.get("x-amzn-ErrorType") || "").split(":")[0] || "HTTP " + res.status;
    throw new APIError(code, `${key}: ${data.message || res.statusText}`, res.status);
  }
  return res.arrayBuffer();
}

// recordingPath is the path of an object of a recording.
export function recordingPath(bucket, key) {
  return recordingsPath + encodeURIComponent(bucket) + "/" + key.split("/").map(encodeURIComponent).join("/");
}

// Page sizes of the List operations whose largest page is not 100.
const maxPageSize = { ListParticipantReplicas: 50 };

// listAll reads every page of a List operation (up to a sane bound).
async function listAll(operation, input, field) {
  const out = [];
  let nextToken;
  for (let page = 0; page < 20; page++) {
    const res = await api(operation, { ...input, maxResults: maxPageSize[operation] || 100, ...(nextToken ? { nextToken } : {}) });
    out.push(...(res[field] || []));
    nextToken = res.nextToken;
    if (!nextToken) break;
  }
  return out;
}

// --- refreshing ---------------------------------------------------------

// refresh reads what the page shows and renders it; called every pollMs
// and after every action.
function refresh() {
  if (polling) {
    pollAgain = true;
    return polling;
  }
  polling = (async () => {
    try {
      if ((await load()) === false) return; // refresh runs again for the new selection
      render();
      setLive("ok", "Live · updated " + new Date().toLocaleTimeString());
      showError(actionError);
    } catch (err) {
      if (authErrors.has(err.code) && !config.dev) {
        signOut(err.message);
        return;
      }
      setLive("error", "Not updating");
      showError(err.message);
    } finally {
      polling = null;
      if (pollAgain) {
        pollAgain = false;
        refresh();
      }
    }
  })();
  return polling;
}

// selectionVersion counts the changes of selection: a load that began
// before one is stale, and leaves both the view and the selection to the
// load that follows (refresh runs again).
let selectionVersion = 0;

// load reads what the selection shows; false if the selection changed
// meanwhile.
async function load() {
  const version = selectionVersion;
  const stale = () => version !== selectionVersion;
  if (selection.tab === "delivery") {
    await loadDelivery();
    return;
  }
  if (selection.tab === "storage") {
    storage.configurations = await listAll("ListStorageConfigurations", {}, "storageConfigurations");
    storage.loaded = true;
    return;
  }
  if (selection.tab === "keys") {
    await loadPublicKeys();
    return;
  }
  if (selection.tab === "encoders") {
    await loadEncoderConfigurations();
    return;
  }
  if (selection.tab === "compositions") {
    return loadCompositions(stale);
  }
  if (selection.tab === "ingest") {
    const readAt = performance.now();
    const [configurations, stages] = await Promise.all([
      listAll("ListIngestConfigurations", {}, "ingestConfigurations"),
      listAll("ListStages", {}, "stages"),
    ]);
    ingest.configurations = configurations;
    ingest.stages = stages.sort(byStageName);
    ingest.readAt = readAt;
    ingest.loaded = true;
    return;
  }
  const stages = await listAll("ListStages", {}, "stages");
  stages.sort(byStageName);
  const live = new Map();
  await Promise.all(stages.filter((s) => s.activeSessionId).map(async (s) => {
    const connected = await listAll("ListParticipants",
      { stageArn: s.arn, sessionId: s.activeSessionId, filterByState: "CONNECTED" }, "participants");
    live.set(s.arn, connected.length);
  }));
  view.stages = stages;
  view.live = live;

  const stage = selectedStage();
  view.sessions = [];
  view.participants = [];
  view.events = [];
  view.participant = null;
  if (!stage) return;
  view.sessions = await listAll("ListStageSessions", { stageArn: stage.arn }, "stageSessions");
  if (stale()) return false;
  view.sessions.sort((a, b) => (b.startTime || "").localeCompare(a.startTime || ""));
  if (!view.sessions.some((s) => s.sessionId === selection.session)) {
    // Follow the live session, or else the latest.
    selection.session = stage.activeSessionId || (view.sessions[0] && view.sessions[0].sessionId) || "";
    selection.participant = "";
    writeSelection();
  }
  if (!selection.session) return;
  view.participants = await listAll("ListParticipants", { stageArn: stage.arn, sessionId: selection.session }, "participants");
  if (stale()) return false;
  view.participants.sort((a, b) => (a.firstJoinTime || "").localeCompare(b.firstJoinTime || ""));
  await Promise.all([loadRecordings(stage), loadEncoders(stage)]);
  if (stale()) return false;
  if (!selection.participant) return;
  if (!view.participants.some((p) => p.participantId === selection.participant)) {
    selection.participant = "";
    writeSelection();
    return;
  }
  const input = { stageArn: stage.arn, sessionId: selection.session, participantId: selection.participant };
  const [events, got, replicas] = await Promise.all([
    listAll("ListParticipantEvents", input, "events"),
    api("GetParticipant", input),
    listAll("ListParticipantReplicas", { sourceStageArn: stage.arn, participantId: selection.participant }, "replicas"),
  ]);
  if (stale()) return false;
  view.events = events.sort((a, b) => (a.eventTime || "").localeCompare(b.eventTime || ""));
  view.participant = got.participant || null;
  // The replications of the participant in this session, newest first.
  view.replicas = replicas.filter((r) => r.sourceSessionId === selection.session).reverse();
}

// loadRecordings reads where the session's participants are recorded:
// GetParticipant for those whose recording state changed since the last
// read, and, for a recording that FAILED, how many segments it kept.
async function loadRecordings(stage) {
  if (recordings.session !== selection.session) {
    recordings.session = selection.session;
    recordings.byParticipant.clear();
  }
  await Promise.all(view.participants.map(async (p) => {
    const state = p.recordingState || "DISABLED";
    const known = recordings.byParticipant.get(p.participantId);
    if (state === "DISABLED" || (known && known.state === state)) return;
    const got = await api("GetParticipant", { stageArn: stage.arn, sessionId: selection.session, participantId: p.participantId });
    const r = {
      state, bucket: got.participant.recordingS3BucketName || "", prefix: got.participant.recordingS3Prefix || "", segments: 0,
    };
    if (state === "FAILED" && r.bucket && r.prefix) {
      try {
        r.segments = await recordedSegments((key) => getObject(r.bucket, r.prefix + key), (err) => err.status === 404);
      } catch {
        return; // the bucket cannot be read now: asked again at the next refresh
      }
    }
    recordings.byParticipant.set(p.participantId, r);
  }));
}

// loadEncoders reads the protocol of the session's RTMP(S) encoders, the
// participants of an ingest configuration, when their state changed since
// the last read.
async function loadEncoders(stage) {
  if (encoders.session !== selection.session) {
    encoders.session = selection.session;
    encoders.byParticipant.clear();
  }
  await Promise.all(view.participants.filter((p) => p.ingestConfigurationArn).map(async (p) => {
    const known = encoders.byParticipant.get(p.participantId);
    if (known && known.state === p.state) return;
    const got = await api("GetParticipant", { stageArn: stage.arn, sessionId: selection.session, participantId: p.participantId });
    encoders.byParticipant.set(p.participantId, { state: p.state, protocol: got.participant.protocol || "" });
  }));
}

// byStageName orders stages by name, or id when they have none.
function byStageName(a, b) {
  return (a.name || stageId(a.arn)).localeCompare(b.name || stageId(b.arn));
}

// playable tells whether a recording can be played: one that STOPPED, or
// one that FAILED after it stored segments.
export function playable(r) {
  return !!r && !!r.bucket && !!r.prefix && (r.state === "STOPPED" || (r.state === "FAILED" && r.segments > 0));
}

// loadDelivery reads the sinks and as many pages of dead letters as are
// shown.
async function loadDelivery() {
  const [status, letters] = await Promise.all([request("GET", deliveryPaths.sinks), loadDeadLetters()]);
  delivery.sinks = status.sinks || [];
  delivery.deadLetters = letters.deadLetters;
  delivery.nextToken = letters.nextToken;
  delivery.loaded = true;
}

async function loadDeadLetters() {
  const deadLetters = [];
  let nextToken = "";
  for (let page = 0; page < delivery.pages; page++) {
    const res = await request("GET", deadLettersPath(delivery.sink, deadLetterPage, nextToken));
    deadLetters.push(...(res.deadLetters || []));
    nextToken = res.nextToken || "";
    if (!nextToken) break;
  }
  return { deadLetters, nextToken };
}

// deadLettersPath is the path and query that list a page of dead letters.
export function deadLettersPath(sink, maxResults, nextToken) {
  const q = [];
  if (sink) q.push("sink=" + encodeURIComponent(sink));
  q.push("maxResults=" + maxResults);
  if (nextToken) q.push("nextToken=" + encodeURIComponent(nextToken));
  return deliveryPaths.deadLetters + "?" + q.join("&");
}

function selectedStage() {
  return view.stages.find((s) => stageId(s.arn) === selection.stage) || null;
}

// --- rendering ----------------------------------------------------------

function render() {
  // A recording plays while its session is in view.
  if (playing && (selection.tab !== "" || playing.session !== selection.session)) stopPlaying();
  const onDelivery = selection.tab === "delivery";
  for (const tab of document.querySelectorAll("#tabs [data-tab]")) {
    if (tab.dataset.tab === selection.tab) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  const onStorage = selection.tab === "storage";
  const onKeys = selection.tab === "keys";
  const onIngest = selection.tab === "ingest";
  const onEncoders = selection.tab === "encoders";
  const onCompositions = selection.tab === "compositions";
  $("stages-view").hidden = selection.tab !== "";
  $("delivery-view").hidden = !onDelivery;
  $("storage-view").hidden = !onStorage;
  $("keys-view").hidden = !onKeys;
  $("ingest-view").hidden = !onIngest;
  $("encoders-view").hidden = !onEncoders;
  $("compositions-view").hidden = !onCompositions;
  if (!onIngest) hideKey(); // stream keys do not stay on screen behind another tab
  if (onDelivery) {
    renderDelivery();
    return;
  }
  if (onStorage) {
    renderStorage();
    return;
  }
  if (onKeys) {
    renderPublicKeys();
    return;
  }
  if (onIngest) {
    renderIngest();
    return;
  }
  if (onEncoders) {
    renderEncoderConfigurations();
    return;
  }
  if (onCompositions) {
    renderCompositions();
    return;
  }
  renderStages();
  const stage = selectedStage();
  $("pick-stage").hidden = !!stage;
  for (const id of ["stage-card", "token-card", "sessions-card"]) $(id).hidden = !stage;
  if (!stage) {
    $("participants-card").hidden = true;
    $("events-card").hidden = true;
    $("player-card").hidden = true;
    return;
  }
  $("stage-title").textContent = stage.name || stageId(stage.arn);
  $("stage-arn").textContent = stage.arn;
  $("stage-active").hidden = !stage.activeSessionId;
  $("stage-session").textContent = stage.activeSessionId || "none";
  const tags = Object.entries(stage.tags || {}).map(([k, v]) => `${k}=${v}`).join(", ");
  $("stage-tags").textContent = tags || "none";
  renderSessions(stage);
  renderParticipants();
  renderPlayer();
  renderEvents();
}

function renderStages() {
  $("stage-count").textContent = view.stages.length ? String(view.stages.length) : "";
  $("no-stages").hidden = view.stages.length > 0;
  replaceRows($("stages"), view.stages.map((s) => {
    const id = stageId(s.arn);
    const live = view.live.get(s.arn) || 0;
    return el("tr", { "data-stage-id": id, "data-stage-arn": s.arn, class: id === selection.stage ? "selected" : "", tabindex: "0" },
      el("td", { class: "strong" }, s.name || el("span", { class: "muted" }, "(no name)")),
      el("td", {}, el("code", {}, id)),
      el("td", { class: "num live-count" + (live ? " on" : "") }, String(live)),
      el("td", {}, s.activeSessionId ? el("code", {}, s.activeSessionId) : el("span", { class: "muted" }, "idle")),
      el("td", { class: "actions" }, el("button", { type: "button", class: "small danger", "data-action": "delete-stage" }, "Delete")));
  }));
}

function renderSessions(stage) {
  $("no-sessions").hidden = view.sessions.length > 0;
  replaceRows($("sessions"), view.sessions.map((s) =>
    el("tr", { "data-session-id": s.sessionId, class: s.sessionId === selection.session ? "selected" : "", tabindex: "0" },
      el("td", {}, el("code", {}, s.sessionId)),
      el("td", {}, formatTime(s.startTime)),
      el("td", {}, s.endTime ? formatTime(s.endTime) : ""),
      el("td", {}, s.sessionId === stage.activeSessionId ? el("span", { class: "badge ok" }, "live") : ""))));
}

function renderParticipants() {
  const card = $("participants-card");
  card.hidden = !selection.session;
  if (!selection.session) return;
  $("participants-session").textContent = "in " + selection.session;
  $("no-participants").hidden = view.participants.length > 0;
  replaceRows($("participants"), view.participants.map((p) => {
    const connected = p.state === "CONNECTED";
    const state = p.recordingState || "DISABLED";
    const r = recordings.byParticipant.get(p.participantId);
    const where = r && r.state === state && r.bucket ? `s3://${r.bucket}/${r.prefix}` : "";
    return el("tr", { "data-participant-id": p.participantId, "data-state": p.state, "data-recording-state": state,
      class: p.participantId === selection.participant ? "selected" : "", tabindex: "0" },
      el("td", { class: "strong" }, p.userId || el("span", { class: "muted" }, "(none)"), protocolBadge(p), replicationBadge(p)),
      el("td", {}, el("code", {}, p.participantId)),
      el("td", {}, el("span", { class: "badge " + (connected ? "ok" : "off") }, p.state)),
      el("td", {}, p.published ? "yes" : "no"),
      el("td", { class: "recording" }, state === "DISABLED"
        ? el("span", { class: "muted" }, "not recorded")
        : [el("span", { class: "badge " + recordingClass(state) }, state),
          where ? el("div", { class: "recording-where" }, el("code", { title: where }, where)) : ""]),
      el("td", {}, formatTime(p.firstJoinTime)),
      el("td", { class: "actions" },
        playable(r) && r.state === state ? el("button", { type: "button", class: "small", "data-action": "play" }, "Play") : "",
        connected ? el("button", { type: "button", class: "small danger", "data-action": "disconnect" }, "Disconnect") : ""));
  }));
}

// protocolBadge says that a participant is an RTMP(S) encoder, and with
// which of the two it publishes.
function protocolBadge(p) {
  if (!p.ingestConfigurationArn) return "";
  const known = encoders.byParticipant.get(p.participantId);
  const protocol = (known && known.protocol) || "RTMP(S)";
  const title = `${protocol} encoder of ingest configuration ${p.ingestConfigurationArn}` + (p.redundantIngest ? ", with redundant ingest" : "");
  return el("span", { class: "badge info protocol", title }, protocol);
}

// replicationBadge says that a participant is a replica from another
// stage, or replicated to others.
function replicationBadge(p) {
  if (p.replicationType === "REPLICA") {
    return el("span", { class: "badge info replication", title: `replica of ${p.sourceStageArn || ""}` }, "replica of " + stageName(p.sourceStageArn));
  }
  if (p.replicationType === "SOURCE" && p.replicationState === "ACTIVE") {
    return el("span", { class: "badge info replication", title: "replicated to other stages" }, "replicated");
  }
  return "";
}

// stageName is a stage's name, or its id when it has none or is not known.
function stageName(arn) {
  const s = view.stages.find((x) => x.arn === arn);
  return (s && s.name) || stageId(arn || "");
}

function recordingClass(state) {
  if (state === "ACTIVE") return "ok";
  if (state === "FAILED") return "bad";
  if (state === "STARTING" || state === "STOPPING") return "warn";
  return "off";
}

// --- the player -----------------------------------------------------------

// play plays the recording of a participant of the selected session.
function play(participantId) {
  const r = recordings.byParticipant.get(participantId);
  if (!playable(r)) return;
  stopPlaying();
  const video = $("player");
  const p = view.participants.find((x) => x.participantId === participantId);
  $("player-title").textContent = "of " + ((p && p.userId) || participantId);
  $("player-source").textContent = `s3://${r.bucket}/${r.prefix}`;
  $("player-card").hidden = false;
  const player = playRecording(video, (key) => getObject(r.bucket, r.prefix + key), {
    onStatus: (text, state) => {
      if (playing && playing.player !== player) return;
      $("player-status").textContent = text;
      $("player-status").dataset.state = state;
    },
  });
  playing = { participantId, session: selection.session, player };
  $("player-card").scrollIntoView({ block: "nearest" });
}

function stopPlaying() {
  if (!playing) return;
  playing.player.stop();
  playing = null;
  $("player-card").hidden = true;
  $("player-status").textContent = "";
  $("player-status").dataset.state = "";
}

// renderPlayer shows the player while it plays a recording.
function renderPlayer() {
  $("player-card").hidden = !playing;
}

function renderEvents() {
  const card = $("events-card");
  card.hidden = !selection.participant || !view.participant;
  if (card.hidden) return;
  const p = view.participant;
  $("events-participant").textContent = "of " + (p.userId || p.participantId);
  const facts = [
    ["Participant ID", p.participantId], ["User ID", p.userId || "(none)"], ["State", p.state],
    ["Protocol", p.protocol || ""], ["Attributes", Object.entries(p.attributes || {}).map(([k, v]) => `${k}=${v}`).join(", ") || "none"],
    ["Recording", p.recordingState || "DISABLED"],
  ];
  if (p.ingestConfigurationArn) {
    facts.push(["Ingest configuration", p.ingestConfigurationArn + (p.redundantIngest ? " (redundant ingest)" : "")]);
  }
  if (p.recordingS3BucketName) facts.push(["Recording bucket", p.recordingS3BucketName], ["Recording prefix", p.recordingS3Prefix || ""]);
  if (p.replicationType === "REPLICA") {
    facts.push(["Replica of", `${stageName(p.sourceStageArn)} (session ${p.sourceSessionId || ""})`], ["Replication", p.replicationState || ""]);
  } else if (p.replicationType === "SOURCE") {
    facts.push(["Replication", p.replicationState || ""]);
  }
  replaceChildren($("participant-facts"), facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  renderReplicas(p);
  replaceChildren($("events"), view.events.map((e) =>
    el("li", { class: "event " + eventClass(e.name), "data-event": e.name },
      el("time", { datetime: e.eventTime || "" }, formatTime(e.eventTime, true)),
      el("span", { class: "event-name" }, e.name),
      e.remoteParticipantId ? el("span", { class: "muted" }, "remote " + nameOf(e.remoteParticipantId)) : "",
      e.errorCode ? el("span", { class: "badge bad" }, e.errorCode) : "",
      e.destinationStageArn ? el("span", { class: "muted" }, "to " + stageName(e.destinationStageArn)) : "",
      e.replica ? el("span", { class: "badge info" }, "replica") : "",
      e.newToken ? el("span", { class: "muted" }, exchangeText(e.previousToken, e.newToken)) : "")));
}

// exchangeText says what a token exchange changed.
function exchangeText(before, after) {
  const caps = (t) => ((t && t.capabilities) || []).join("+") || "no capabilities";
  const parts = [];
  if (caps(before) !== caps(after)) parts.push(`${caps(before)} → ${caps(after)}`);
  if ((before && before.userId) !== after.userId) parts.push(`user ${after.userId || "(none)"}`);
  if (JSON.stringify((before && before.attributes) || {}) !== JSON.stringify(after.attributes || {})) {
    parts.push("attributes " + (Object.entries(after.attributes || {}).map(([k, v]) => `${k}=${v}`).join(", ") || "none"));
  }
  return parts.join("; ") || "same capabilities and attributes";
}

// renderReplicas shows where the selected participant is replicated, and
// lets it be replicated to another stage while it publishes here.
function renderReplicas(p) {
  const stage = selectedStage();
  const publishing = p.state === "CONNECTED" && p.published && p.replicationType !== "REPLICA" && stage &&
    stage.activeSessionId === selection.session;
  $("replicas-section").hidden = !publishing && view.replicas.length === 0;
  $("replicas").hidden = view.replicas.length === 0;
  replaceRows($("replicas"), view.replicas.map((r) => el("tr", { "data-destination-arn": r.destinationStageArn, "data-state": r.replicationState },
    el("td", { class: "strong", title: r.destinationStageArn }, stageName(r.destinationStageArn)),
    el("td", {}, el("code", {}, r.destinationSessionId || "")),
    el("td", {}, el("span", { class: "badge " + (r.replicationState === "ACTIVE" ? "ok" : "off") }, r.replicationState)),
    el("td", { class: "actions" }, r.replicationState === "ACTIVE"
      ? el("button", { type: "button", class: "small danger", "data-action": "stop-replication" }, "Stop") : ""))));
  $("replicate").hidden = !publishing;
  const active = new Set(view.replicas.filter((r) => r.replicationState === "ACTIVE").map((r) => r.destinationStageArn));
  const choices = view.stages.filter((s) => s.arn !== (stage && stage.arn) && !active.has(s.arn));
  const select = $("replicate-to");
  const chosen = select.value;
  $("replicate-submit").disabled = choices.length === 0;
  replaceChildren(select, [el("option", { value: "" }, choices.length ? "Replicate to stage…" : "no other stage to replicate to"),
    ...choices.map((s) => el("option", { value: s.arn, ...(s.arn === chosen ? { selected: "" } : {}) }, s.name || stageId(s.arn)))]);
}

function renderStorage() {
  const { loaded, configurations } = storage;
  $("storage-count").textContent = configurations.length ? String(configurations.length) : "";
  $("no-storage").hidden = !loaded || configurations.length > 0;
  $("storage").hidden = !configurations.length;
  replaceRows($("storage"), configurations.map((c) => {
    const tags = Object.entries(c.tags || {}).map(([k, v]) => `${k}=${v}`).join(", ");
    return el("tr", { "data-storage-arn": c.arn },
      el("td", { class: "strong" }, c.name || el("span", { class: "muted" }, "(no name)")),
      el("td", { title: c.arn }, el("code", {}, resourceId(c.arn))),
      el("td", {}, el("code", {}, (c.s3 && c.s3.bucketName) || "")),
      el("td", {}, tags || el("span", { class: "muted" }, "none")),
      el("td", { class: "actions" }, el("button", { type: "button", class: "small danger", "data-action": "delete-storage" }, "Delete")));
  }));
}

async function loadPublicKeys() {
  const keys = await listAll("ListPublicKeys", {}, "publicKeys");
  const known = publicKeys.fingerprints;
  await Promise.all(keys.filter((k) => !known.has(k.arn)).map(async (k) => {
    try {
      const res = await api("GetPublicKey", { arn: k.arn });
      known.set(k.arn, res.publicKey.fingerprint || "");
    } catch (err) {
      if (err.code !== "ResourceNotFoundException") throw err; // deleted meanwhile
    }
  }));
  publicKeys.keys = keys;
  publicKeys.loaded = true;
}

function renderPublicKeys() {
  const { loaded, keys, fingerprints } = publicKeys;
  $("key-count").textContent = keys.length ? String(keys.length) : "";
  $("no-keys").hidden = !loaded || keys.length > 0;
  $("keys").hidden = !keys.length;
  replaceRows($("keys"), keys.map((k) => {
    const tags = Object.entries(k.tags || {}).map(([n, v]) => `${n}=${v}`).join(", ");
    return el("tr", { "data-key-arn": k.arn },
      el("td", { class: "strong" }, k.name || el("span", { class: "muted" }, "(no name)")),
      el("td", { title: k.arn }, el("code", {}, resourceId(k.arn))),
      el("td", {}, el("code", {}, fingerprints.get(k.arn) || "")),
      el("td", {}, tags || el("span", { class: "muted" }, "none")),
      el("td", { class: "actions" }, el("button", { type: "button", class: "small danger", "data-action": "delete-key" }, "Delete")));
  }));
}

async function loadEncoderConfigurations() {
  const configurations = await listAll("ListEncoderConfigurations", {}, "encoderConfigurations");
  const known = encoderConfigs.videos;
  await Promise.all(configurations.filter((c) => !known.has(c.arn)).map(async (c) => {
    try {
      const res = await api("GetEncoderConfiguration", { arn: c.arn });
      known.set(c.arn, res.encoderConfiguration.video);
    } catch (err) {
      if (err.code !== "ResourceNotFoundException") throw err; // deleted meanwhile
    }
  }));
  encoderConfigs.configurations = configurations;
  encoderConfigs.loaded = true;
}

function renderEncoderConfigurations() {
  const { loaded, configurations, videos } = encoderConfigs;
  $("encoder-count").textContent = configurations.length ? String(configurations.length) : "";
  $("no-encoders").hidden = !loaded || configurations.length > 0;
  $("encoders").hidden = !configurations.length;
  replaceRows($("encoders"), configurations.map((c) => {
    const tags = Object.entries(c.tags || {}).map(([k, v]) => `${k}=${v}`).join(", ");
    return el("tr", { "data-encoder-arn": c.arn },
      el("td", { class: "strong" }, c.name || el("span", { class: "muted" }, "(no name)")),
      el("td", { title: c.arn }, el("code", {}, resourceId(c.arn))),
      el("td", { class: "nowrap" }, formatVideo(videos.get(c.arn))),
      el("td", {}, tags || el("span", { class: "muted" }, "none")),
      el("td", { class: "actions" }, el("button", { type: "button", class: "small danger", "data-action": "delete-encoder" }, "Delete")));
  }));
}

// formatVideo shows an encoder configuration's video in a few words:
// "1280×720, 30 fps, 2.5 Mbps"; "" before it is known.
export function formatVideo(video) {
  if (!video) return "";
  const bps = video.bitrate;
  const rate = bps >= 1e6 ? `${+(bps / 1e6).toFixed(3)} Mbps` : bps >= 1e3 ? `${+(bps / 1e3).toFixed(3)} kbps` : `${bps} bps`;
  return `${video.width}×${video.height}, ${video.framerate} fps, ${rate}`;
}

// encoderVideo is the video of the create form's fields (text as typed,
// bitrate in kbps): the members given, as numbers, and none of the empty
// ones, which the server fills in with its defaults. null when all are
// empty.
export function encoderVideo({ width, height, framerate, bitrate }) {
  const video = {};
  const number = (text) => (String(text).trim() === "" ? null : Number(text));
  if (number(width) !== null) video.width = number(width);
  if (number(height) !== null) video.height = number(height);
  if (number(framerate) !== null) video.framerate = number(framerate);
  if (number(bitrate) !== null) video.bitrate = Math.round(number(bitrate) * 1000);
  return Object.keys(video).length ? video : null;
}

// loadCompositions reads the compositions (of the stage filtered by), what
// the start form offers, and each composition not read yet with
// GetComposition; false if the filter or the selection changed meanwhile.
async function loadCompositions(stale) {
  const filter = compositions.stage;
  const [list, stages, storageConfigurations] = await Promise.all([
    listAll("ListCompositions", filter ? { filterByStageArn: filter } : {}, "compositions"),
    listAll("ListStages", {}, "stages"),
    listAll("ListStorageConfigurations", {}, "storageConfigurations"),
    loadEncoderConfigurations(),
  ]);
  const known = compositions.details;
  await Promise.all(list.filter((c) => !known.has(c.arn)).map(async (c) => {
    try {
      known.set(c.arn, (await api("GetComposition", { arn: c.arn })).composition);
    } catch (err) {
      if (err.code !== "ResourceNotFoundException") throw err; // gone meanwhile
    }
  }));
  if (stale() || filter !== compositions.stage) return false;
  const listed = new Set(list.map((c) => c.arn));
  for (const arn of known.keys()) if (!listed.has(arn)) known.delete(arn);
  compositions.list = list.reverse(); // listed oldest first
  compositions.stages = stages.sort(byStageName);
  compositions.storage = storageConfigurations;
  compositions.loaded = true;
  if (selection.composition && !list.some((c) => resourceId(c.arn) === selection.composition)) {
    selection.composition = ""; // ended long ago, or not of the stage filtered by
    writeSelection();
  }
}

// compositionEnded tells whether a composition, or a destination, is in a
// state it never leaves.
export function compositionEnded(state) {
  return state === "STOPPED" || state === "FAILED";
}

function compositionClass(state) {
  if (state === "ACTIVE") return "ok";
  if (state === "FAILED") return "bad";
  if (state === "STARTING" || state === "STOPPING" || state === "RECONNECTING") return "warn";
  return "off";
}

function renderCompositions() {
  const { loaded, list, stages, details } = compositions;
  $("composition-count").textContent = list.length ? String(list.length) : "";
  $("no-compositions").hidden = !loaded || list.length > 0;
  $("no-compositions").textContent = compositions.stage ? "No compositions of this stage." : "No compositions. Start one below.";
  $("compositions").hidden = !list.length;
  replaceRows($("compositions"), list.map((c) => {
    const id = resourceId(c.arn);
    const detail = details.get(c.arn);
    return el("tr", { "data-composition-id": id, "data-composition-arn": c.arn, "data-state": c.state,
      class: id === selection.composition ? "selected" : "", tabindex: "0" },
      el("td", { title: c.arn }, el("code", {}, id)),
      el("td", { class: "stage" }, stageLink(c.stageArn, stages)),
      el("td", {}, el("span", { class: "badge " + compositionClass(c.state) }, c.state)),
      el("td", { class: "destinations" }, (c.destinations || []).map((d) => {
        const kind = destinationKind(detail, d.id);
        return el("span", { class: "badge destination " + compositionClass(d.state), "data-destination-id": d.id, "data-state": d.state,
          title: `Destination ${d.id}` }, (kind ? kind + " " : "") + d.state);
      })),
      el("td", { class: "nowrap" }, formatTime(c.startTime)),
      el("td", { class: "nowrap" }, formatTime(c.endTime)),
      el("td", { class: "actions" }, compositionEnded(c.state)
        ? "" : el("button", { type: "button", class: "small danger", "data-action": "stop-composition" }, "Stop")));
  }));

  // The filter offers the stages, and the one filtered by if it is gone.
  const options = [{ value: "", text: "All stages" }, ...stages.map((s) => ({ value: s.arn, text: s.name || stageId(s.arn) }))];
  if (compositions.stage && !stages.some((s) => s.arn === compositions.stage)) {
    options.push({ value: compositions.stage, text: stageId(compositions.stage) + " (not found)" });
  }
  fillSelect($("composition-stage"), options, compositions.stage, true);

  renderComposition();
  renderCompositionForm();
}

// destinationKind is "S3" or "channel" for a destination of a composition
// as GetComposition gave it; "" before it is read.
function destinationKind(detail, id) {
  const d = ((detail && detail.destinations) || []).find((x) => x.id === id);
  const conf = (d && d.configuration) || {};
  return conf.s3 ? "S3" : conf.channel ? "channel" : "";
}

// renderComposition shows the selected composition: its states and times
// from the list, its layout and destinations from GetComposition.
function renderComposition() {
  const c = compositions.list.find((x) => resourceId(x.arn) === selection.composition);
  $("composition-card").hidden = !c;
  if (!c) return;
  const detail = compositions.details.get(c.arn) || {};
  const card = $("composition-card");
  card.dataset.arn = c.arn;
  $("composition-title").textContent = resourceId(c.arn);
  $("composition-state").textContent = c.state;
  $("composition-state").className = "badge " + compositionClass(c.state);
  $("composition-stop").hidden = compositionEnded(c.state);
  const tags = Object.entries(c.tags || {}).map(([k, v]) => `${k}=${v}`).join(", ");
  const facts = [
    ["ARN", el("code", {}, c.arn)],
    ["Stage", stageLink(c.stageArn, compositions.stages)],
    ["Layout", detail.layout ? describeLayout(detail.layout) : ""],
    ["Started", c.startTime ? formatTime(c.startTime, true) : el("span", { class: "muted" }, "not yet")],
    ["Ended", c.endTime ? formatTime(c.endTime, true) : el("span", { class: "muted" }, compositionEnded(c.state) ? "" : "running")],
    ["Tags", tags || el("span", { class: "muted" }, "none")],
  ];
  replaceChildren($("composition-facts"), facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  const full = new Map((detail.destinations || []).map((d) => [d.id, d]));
  replaceRows($("composition-destinations"), (c.destinations || []).map((d) => {
    const f = full.get(d.id) || {};
    const conf = f.configuration || {};
    return el("tr", { "data-destination-id": d.id, "data-state": d.state },
      el("td", { title: "Destination " + d.id }, conf.name ? el("span", { class: "strong" }, conf.name) : el("code", {}, d.id)),
      el("td", { class: "where" }, destinationWhere(conf, f.detail)),
      el("td", {}, destinationEncoding(conf)),
      el("td", {}, el("span", { class: "badge " + compositionClass(d.state) }, d.state)),
      el("td", { class: "nowrap" }, formatTime(d.startTime, true)),
      el("td", { class: "nowrap" }, formatTime(d.endTime, true)));
  }));
}

// destinationWhere says where a destination goes: the storage
// configuration, its bucket and the recording's prefix in it, or the
// channel.
function destinationWhere(conf, detail) {
  if (conf.s3) {
    const arn = conf.s3.storageConfigurationArn;
    const sc = compositions.storage.find((x) => x.arn === arn);
    const bucket = sc && sc.s3 && sc.s3.bucketName;
    const prefix = (detail && detail.s3 && detail.s3.recordingPrefix) || "";
    return [
      el("div", {}, "S3 ", sc
        ? el("span", { title: arn }, sc.name || resourceId(arn), bucket ? [" (", el("code", {}, bucket), ")"] : "")
        : el("span", { class: "muted", title: arn }, el("code", {}, resourceId(arn)), " (not found)")),
      prefix ? el("div", { class: "muted small" }, "prefix ",
        el("code", { class: "recording-prefix", title: bucket ? `s3://${bucket}/${prefix}/` : prefix }, prefix)) : "",
    ];
  }
  if (conf.channel) return el("div", {}, "channel ", el("code", { class: "channel-arn" }, conf.channel.channelArn));
  return "";
}

// destinationEncoding names a destination's encoder configuration with
// its video, or says it takes the default.
function destinationEncoding(conf) {
  const arn = conf.s3 ? (conf.s3.encoderConfigurationArns || [])[0] : conf.channel ? conf.channel.encoderConfigurationArn : "";
  if (!conf.s3 && !conf.channel) return "";
  if (!arn) return el("span", { class: "muted" }, "default · " + defaultVideoText);
  const c = encoderConfigs.configurations.find((x) => x.arn === arn);
  if (!c) return el("span", { class: "muted", title: arn }, el("code", {}, resourceId(arn)), " (not found)");
  return el("span", { title: arn }, encoderLabel(c));
}

// The video of a destination without an encoder configuration.
const defaultVideoText = "1280×720, 30 fps, 2.5 Mbps";

// encoderLabel names an encoder configuration with its video.
function encoderLabel(c) {
  const video = formatVideo(encoderConfigs.videos.get(c.arn));
  return (c.name || resourceId(c.arn)) + (video ? " · " + video : "");
}

// describeLayout says what a composition's layout is, in a few words:
// "Grid, featured participant attribute featured", "Picture-in-picture
// at the bottom right, PiP participant attribute guest".
export function describeLayout(layout) {
  const l = layout || {};
  const parts = [];
  const o = l.pip || l.grid || {};
  if (l.pip) {
    parts.push("Picture-in-picture at the " + (l.pip.pipPosition || "BOTTOM_RIGHT").toLowerCase().replace("_", " "));
  } else {
    parts.push("Grid");
  }
  if (o.featuredParticipantAttribute) parts.push("featured participant attribute " + o.featuredParticipantAttribute);
  if (l.pip && l.pip.pipParticipantAttribute) parts.push("PiP participant attribute " + l.pip.pipParticipantAttribute);
  if (o.omitStoppedVideo) parts.push("stopped video left out");
  return parts.join(", ");
}

// renderCompositionForm offers the stages, storage and encoder
// configurations in the start form, keeping what was chosen.
function renderCompositionForm() {
  const { stages, storage: storages } = compositions;
  fillSelect($("new-composition-stage"), stages.map((s) => ({ value: s.arn, text: s.name || stageId(s.arn) })),
    compositions.stage, false, "No stages: create one in the Stages tab");
  fillSelect($("new-composition-storage"), storages.map((c) => ({
    value: c.arn, text: (c.name || resourceId(c.arn)) + (c.s3 && c.s3.bucketName ? ` (${c.s3.bucketName})` : ""),
  })), "", false, "No storage configurations");
  const encoders = encoderConfigs.configurations.map((c) => ({ value: c.arn, text: encoderLabel(c) }));
  fillSelect($("new-composition-s3-encoder"), encoders, "", false, "No encoder configurations");
  fillSelect($("new-composition-channel-encoder"), [{ value: "", text: "Default · " + defaultVideoText }, ...encoders], "");
  $("new-composition-s3-missing").hidden = !compositions.loaded || (storages.length > 0 && encoders.length > 0);
  syncCompositionForm();
}

// fillSelect offers options ({value, text}) in select: the choice stays
// while it is offered, unless forced, and is otherwise value, or the first
// option. With no options, select shows none as a choice that is no
// choice.
function fillSelect(select, options, value, force, none) {
  if (!options.length && none) options = [{ value: "", text: none }];
  const offered = (v) => options.some((o) => o.value === v);
  let chosen = options.length ? options[0].value : "";
  if (!force && select.dataset.touched && offered(select.value)) chosen = select.value;
  else if (offered(value)) chosen = value;
  replaceChildren(select, options.map((o) => el("option", { value: o.value, ...(o.value === chosen ? { selected: "" } : {}) }, o.text)));
  if (select.value !== chosen) select.value = chosen;
}

// syncCompositionForm shows the PiP options of a PiP layout, and leaves
// out (disables) a destination not asked for.
function syncCompositionForm() {
  const pip = $("new-composition-layout").value === "pip";
  $("new-composition-pip").hidden = !pip;
  $("new-composition-pip").disabled = !pip;
  $("new-composition-s3-fields").disabled = !$("new-composition-s3").checked;
  $("new-composition-channel-fields").disabled = !$("new-composition-channel").checked;
}

// compositionInput is the StartComposition input of the start form's
// fields: the layout with what was given of it, and a destination for
// each of s3 and channel that is checked (none if neither is). An empty
// attribute is left out, and so is the channel's encoder configuration
// when none is chosen (the default video).
export function compositionInput(f) {
  const options = {};
  if (String(f.featured || "").trim()) options.featuredParticipantAttribute = f.featured.trim();
  if (f.omitStopped) options.omitStoppedVideo = true;
  if (f.layout === "pip") {
    if (String(f.pipAttribute || "").trim()) options.pipParticipantAttribute = f.pipAttribute.trim();
    if (f.pipPosition) options.pipPosition = f.pipPosition;
  }
  const destinations = [];
  if (f.s3) {
    destinations.push({ s3: { storageConfigurationArn: f.storageArn, encoderConfigurationArns: f.s3Encoder ? [f.s3Encoder] : [] } });
  }
  if (f.channel) {
    destinations.push({ channel: { channelArn: String(f.channelArn || "").trim(), ...(f.channelEncoder ? { encoderConfigurationArn: f.channelEncoder } : {}) } });
  }
  return { stageArn: f.stageArn, layout: f.layout === "pip" ? { pip: options } : { grid: options }, destinations };
}

// stopComposition asks to confirm, then stops a composition.
function stopComposition(arn) {
  confirmDialog({
    title: "Stop composition?",
    text: `Stop composition ${resourceId(arn)}? Its recording ends and its channel stream stops; a composition cannot be started again.`,
    ok: "Stop",
  }).then((ok) => {
    if (!ok) return;
    act(() => api("StopComposition", { arn }));
  });
}

function renderIngest() {
  const { loaded, configurations, stages } = ingest;
  $("ingest-count").textContent = configurations.length ? String(configurations.length) : "";
  $("no-ingest").hidden = !loaded || configurations.length > 0;
  $("ingest").hidden = !configurations.length;
  replaceRows($("ingest"), configurations.map((c) =>
    el("tr", { "data-ingest-arn": c.arn, "data-state": c.state },
      el("td", { class: "strong", title: c.arn }, c.name || el("span", { class: "muted" }, "(no name)")),
      el("td", { class: "stage" }, stageLink(c.stageArn, stages)),
      el("td", { class: "nowrap" }, c.ingestProtocol,
        c.redundantIngest ? el("span", { class: "badge info protocol", title: "A second encoder may publish the same content" }, "redundant") : ""),
      el("td", {}, el("span", { class: "badge " + (c.state === "ACTIVE" ? "ok" : "off") }, c.state)),
      el("td", {}, c.userId || el("span", { class: "muted" }, "(none)")),
      el("td", {}, el("code", {}, c.participantId)),
      el("td", { class: "actions nowrap" },
        el("button", { type: "button", class: "small", "data-action": "show-ingest-key" }, "Show key"),
        el("button", { type: "button", class: "small", "data-action": "change-ingest-stage" }, "Change stage"),
        el("button", { type: "button", class: "small danger", "data-action": "delete-ingest" }, "Delete")))));

  // The create form offers the stages, the first by default.
  const select = $("new-ingest-stage");
  const chosen = select.dataset.touched ? select.value : null;
  replaceChildren(select, [...stages.map((s) => el("option", { value: s.arn, ...(s.arn === chosen ? { selected: "" } : {}) }, s.name || stageId(s.arn))),
    el("option", { value: "", ...(chosen === "" ? { selected: "" } : {}) }, "No stage")]);
  $("new-ingest-insecure").hidden = $("new-ingest-protocol").value !== "RTMP";

  if (shownKey && loaded && ingest.readAt > shownAt && !configurations.some((c) => c.arn === shownKey)) hideKey(); // deleted
}

// stageLink links to a stage of stages (the ingest or compositions tab's
// list) by its name: "none" for no stage, the id of one that is gone.
function stageLink(arn, stages) {
  if (!arn) return el("span", { class: "muted" }, "none");
  const s = stages.find((x) => x.arn === arn);
  if (!s) return el("span", { class: "muted", title: arn }, el("code", {}, stageId(arn)), " (not found)");
  return el("a", { class: "stage-link", href: "#stage=" + encodeURIComponent(stageId(arn)), title: arn },
    s.name ? el("span", { class: "stage-name" }, s.name) : el("code", {}, stageId(arn)));
}

// ingestEndpoint is where an encoder of protocol publishes, of a stage's
// endpoints: "" if the server does not serve that protocol.
export function ingestEndpoint(endpoints, protocol) {
  return (endpoints && (protocol === "RTMP" ? endpoints.rtmp : endpoints.rtmps)) || "";
}

// showKey shows the stream keys of an ingest configuration as
// CreateIngestConfiguration, GetIngestConfiguration or
// UpdateIngestConfiguration return it, with the endpoint of its stage.
async function showKey(ic) {
  let endpoints = null;
  let stageGone = false;
  if (ic.stageArn) {
    try {
      endpoints = (await api("GetStage", { arn: ic.stageArn })).stage.endpoints || {};
    } catch (err) {
      if (err.code !== "ResourceNotFoundException") throw err;
      stageGone = true;
    }
  }
  const endpoint = ingestEndpoint(endpoints, ic.ingestProtocol);
  const parts = [];
  if (!ic.stageArn) {
    parts.push(el("p", { class: "key-note" }, "This configuration has no stage: its keys publish nowhere until it is given one."));
  } else if (stageGone) {
    parts.push(el("p", { class: "key-note" }, `Its stage ${stageId(ic.stageArn)} is gone: its keys publish nowhere until it is given another.`));
  } else if (!endpoint) {
    parts.push(el("p", { class: "key-note" }, ic.ingestProtocol === "RTMP"
      ? "This server does not serve RTMP (it was started with --rtmp-port -1)."
      : "This server does not serve RTMPS: start it with --rtmps-port, --rtmps-cert and --rtmps-key."));
  }
  if (endpoint) parts.push(copyField("Server", "ingest-server", endpoint));
  const credentials = [{ title: "Encoder", suffix: "", participantId: ic.participantId, streamKey: ic.streamKey },
    ...(ic.redundantIngestCredentials || []).map((c, i) => ({
      title: "Redundant encoder", suffix: "-redundant" + (i ? "-" + (i + 1) : ""), participantId: c.participantId, streamKey: c.streamKey,
    }))];
  for (const c of credentials) {
    parts.push(el("div", { class: "credential", "data-participant-id": c.participantId },
      el("h3", {}, c.title, " ", el("span", { class: "muted small" }, "participant ", el("code", {}, c.participantId))),
      copyField("Stream key", "ingest-stream-key" + c.suffix, c.streamKey),
      endpoint ? copyField("Encoder URL", "ingest-url" + c.suffix, endpoint + c.streamKey) : ""));
  }
  $("ingest-key-title").textContent = "of " + (ic.name || resourceId(ic.arn)) + " · " + ic.ingestProtocol;
  $("ingest-credentials").replaceChildren(...parts);
  $("ingest-key").dataset.arn = ic.arn;
  $("ingest-key").hidden = false;
  shownKey = ic.arn;
  shownAt = performance.now();
  $("ingest-key").scrollIntoView({ block: "nearest" });
}

// copyField is a read-only field with a copy button; its value is set on
// the element, never as an attribute.
function copyField(label, id, value) {
  const input = el("input", { id, readonly: "", spellcheck: "false" });
  input.value = value;
  return el("label", {}, label,
    el("span", { class: "copyable" }, input, el("button", { type: "button", "data-copy": id }, "Copy")));
}

function hideKey() {
  if (!shownKey && $("ingest-key").hidden) return;
  shownKey = "";
  $("ingest-key").hidden = true;
  delete $("ingest-key").dataset.arn;
  $("ingest-credentials").replaceChildren();
}

// parseAttributes reads key=value pairs separated by commas or new lines.
export function parseAttributes(text) {
  const attributes = {};
  for (const line of text.split(/[,\n]/)) {
    const [k, ...v] = line.split("=");
    if (k.trim()) attributes[k.trim()] = v.join("=").trim();
  }
  return attributes;
}

function renderDelivery() {
  const { loaded, sinks, deadLetters, nextToken } = delivery;
  $("sink-count").textContent = sinks.length ? String(sinks.length) : "";
  $("no-sinks").hidden = !loaded || sinks.length > 0;
  $("sinks").hidden = !sinks.length;
  replaceRows($("sinks"), sinks.map((s) => {
    const health = sinkHealth(s);
    return el("tr", { "data-sink": s.name },
      el("td", { class: "strong nowrap" }, s.name, health ? el("span", { class: "badge sink-health " + health.class }, health.text) : ""),
      el("td", {}, s.kind),
      el("td", { class: "target" }, el("code", {}, s.target)),
      ...["pending", "inFlight", "delivered", "failedTries", "deadLettered"].map((k) =>
        el("td", { class: "num", "data-field": k }, String(s[k] || 0))),
      el("td", { class: "last-error" }, s.lastError
        ? [el("div", { class: health && health.class === "bad" ? "error" : "" }, s.lastError), el("div", { class: "muted small" }, formatTime(s.lastErrorAt, true))]
        : el("span", { class: "muted" }, "none")),
      el("td", { "data-field": "lastDeliveredAt" }, s.lastDeliveredAt ? formatTime(s.lastDeliveredAt, true) : el("span", { class: "muted" }, "never")));
  }));

  const filter = $("dead-letter-sink");
  $("dead-letter-sink-label").hidden = sinks.length < 2 && !delivery.sink;
  const names = sinks.map((s) => s.name);
  if (delivery.sink && !names.includes(delivery.sink)) names.push(delivery.sink);
  replaceChildren(filter, [el("option", { value: "" }, "All sinks"),
    ...names.map((n) => el("option", { value: n, ...(n === delivery.sink ? { selected: "" } : {}) }, n))]);
  filter.value = delivery.sink;

  $("dead-letter-count").textContent = deadLetters.length ? deadLetters.length + (nextToken ? "+" : "") : "";
  $("no-dead-letters").hidden = !loaded || deadLetters.length > 0;
  $("dead-letters").hidden = !deadLetters.length;
  $("dead-letters-more").hidden = !nextToken;
  replaceRows($("dead-letters"), deadLetters.map((l) => {
    const ev = l.event || {};
    const detail = ev.detail || {};
    const arn = (ev.resources || [])[0] || "";
    return el("tr", { "data-sink": l.sink, "data-event-id": ev.id },
      el("td", {}, el("code", {}, l.sink)),
      el("td", { title: "Event " + ev.id },
        el("div", { class: "event-name" }, detail.event_name || "(unnamed)"),
        el("div", { class: "muted small" }, ev["detail-type"] || "")),
      el("td", { class: "stage" }, arn
        ? [el("a", { class: "stage-link", href: "#stage=" + encodeURIComponent(stageId(arn)), title: arn }, el("code", {}, stageId(arn))),
          detail.stage_name ? el("div", { class: "muted small" }, detail.stage_name) : ""]
        : el("span", { class: "muted" }, "none")),
      el("td", {}, formatTime(ev.time, true)),
      el("td", { class: "num" }, String(l.attempts)),
      el("td", { class: "last-error" },
        el("div", { class: "error" }, l.lastError || ""),
        el("div", { class: "muted small" }, l.deadAt ? "given up " + formatTime(l.deadAt, true) : "")),
      el("td", { class: "actions" }, el("button", { type: "button", class: "small", "data-action": "redrive" }, "Redrive")));
  }));
}

// sinkHealth tells whether a sink delivers or fails now: by which came
// last, its last delivery or its last error.
export function sinkHealth(s) {
  const delivered = s.lastDeliveredAt ? Date.parse(s.lastDeliveredAt) : 0;
  const failed = s.lastErrorAt ? Date.parse(s.lastErrorAt) : 0;
  if (failed > delivered) return { class: "bad", text: "failing" };
  if (delivered) return { class: "ok", text: "delivering" };
  return null;
}

function eventClass(name) {
  if (/ERROR/.test(name)) return "bad";
  if (name === "LEFT" || /STOPPED/.test(name)) return "off";
  return "ok";
}

function nameOf(participantId) {
  const p = view.participants.find((x) => x.participantId === participantId);
  return p && p.userId ? `${p.userId} (${participantId})` : participantId;
}

// replaceRows renders rows into table's body, leaving it alone when
// nothing changed so that a click in progress is not lost.
function replaceRows(table, rows) {
  replaceChildren(table.tBodies[0], rows);
}

function replaceChildren(parent, children) {
  const html = children.map((c) => (typeof c === "string" ? c : c.outerHTML)).join("");
  if (parent.dataset.rendered === html) return;
  parent.dataset.rendered = html;
  parent.replaceChildren(...children);
}

// el builds an element; children are nodes or text, never HTML, or
// arrays of them.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v != null && (v !== "" || k === "value" || k === "selected")) e.setAttribute(k, v);
  for (const c of children.flat()) if (c !== "" && c != null) e.append(c);
  return e;
}

function formatTime(iso, seconds) {
  if (!iso) return "";
  const d = new Date(iso);
  const today = new Date().toDateString() === d.toDateString();
  const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", ...(seconds || today ? { second: "2-digit" } : {}) });
  return today ? time : d.toLocaleDateString() + " " + time;
}

function stageId(arn) {
  return String(arn).split("/").pop();
}

// resourceId is the id at the end of any IVS ARN.
function resourceId(arn) {
  return String(arn).split("/").pop();
}

function setLive(state, text) {
  $("live").dataset.state = state;
  $("live-text").textContent = text;
}

function showError(message) {
  $("error").hidden = !message;
  $("error").textContent = message || "";
}

// --- selection ----------------------------------------------------------

function readSelection() {
  selectionVersion++;
  const q = new URLSearchParams(location.hash.slice(1));
  for (const k of selectionKeys) selection[k] = q.get(k) || "";
  if (!tabs.has(selection.tab)) selection.tab = "";
}

function writeSelection() {
  const q = new URLSearchParams();
  for (const k of selectionKeys) if (selection[k]) q.set(k, selection[k]);
  const hash = q.toString();
  history.replaceState(null, "", hash ? "#" + hash : location.pathname);
}

function select(changes) {
  actionError = "";
  Object.assign(selection, changes);
  selectionVersion++;
  writeSelection();
  render();
  refresh();
}

// --- actions --------------------------------------------------------------

// confirmDialog asks to confirm an action, and resolves to null if it is
// cancelled, or to what the dialog asked: a reason (with reason), the
// choice among choice.options (with choice: {label, options: [{value,
// text}], value}), whether check (its text) is checked. Its OK button is
// that of something that cannot be undone unless safe is set.
function confirmDialog({ title, text, ok, reason, choice, check, safe }) {
  const dialog = $("confirm");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = ok;
  $("confirm-ok").className = safe ? "primary" : "danger";
  $("confirm-reason-label").hidden = !reason;
  $("confirm-reason").value = "";
  $("confirm-choice-label").hidden = !choice;
  $("confirm-choice-text").textContent = choice ? choice.label : "";
  $("confirm-choice").replaceChildren(...(choice ? choice.options.map((o) => el("option", { value: o.value }, o.text)) : []));
  if (choice) $("confirm-choice").value = choice.value;
  $("confirm-check-label").hidden = !check;
  $("confirm-check-text").textContent = check || "";
  $("confirm-check").checked = false;
  return new Promise((resolve) => {
    const done = (value) => {
      $("confirm-form").onsubmit = null;
      $("confirm-cancel").onclick = null;
      dialog.onclose = null;
      if (dialog.open) dialog.close();
      resolve(value);
    };
    $("confirm-form").onsubmit = (e) => {
      e.preventDefault();
      done({ reason: $("confirm-reason").value.trim(), choice: $("confirm-choice").value, checked: $("confirm-check").checked });
    };
    $("confirm-cancel").onclick = () => done(null);
    dialog.onclose = () => done(null);
    dialog.showModal();
    if (reason) $("confirm-reason").focus();
    else if (choice) $("confirm-choice").focus();
  });
}

// copy copies input's value, and says so on button for a moment.
async function copy(button, input) {
  try {
    await navigator.clipboard.writeText(input.value);
  } catch {
    input.select();
    document.execCommand("copy");
  }
  if (button.dataset.label === undefined) button.dataset.label = button.textContent;
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = button.dataset.label; }, 1500);
}

async function act(fn) {
  try {
    await fn();
    actionError = "";
  } catch (err) {
    actionError = err.message;
  }
  showError(actionError);
  await refresh();
}

function wireActions() {
  $("create-stage").addEventListener("submit", (e) => {
    e.preventDefault();
    const name = $("new-stage-name").value.trim();
    act(async () => {
      const res = await api("CreateStage", name ? { name } : {});
      $("new-stage-name").value = "";
      select({ stage: stageId(res.stage.arn), session: "", participant: "" });
    });
  });

  $("stages").tBodies[0].addEventListener("click", (e) => {
    const row = e.target.closest("tr[data-stage-id]");
    if (!row) return;
    if (e.target.closest("[data-action=delete-stage]")) {
      const name = row.cells[0].textContent;
      confirmDialog({ title: "Delete stage?", text: `Delete ${name}? Everyone in it is disconnected.`, ok: "Delete" }).then((ok) => {
        if (!ok) return;
        act(async () => {
          await api("DeleteStage", { arn: row.dataset.stageArn });
          if (selection.stage === row.dataset.stageId) select({ stage: "", session: "", participant: "" });
        });
      });
      return;
    }
    if (selection.stage !== row.dataset.stageId) {
      $("minted").hidden = true;
      select({ stage: row.dataset.stageId, session: "", participant: "" });
    }
  });

  $("create-storage").addEventListener("submit", (e) => {
    e.preventDefault();
    const name = $("new-storage-name").value.trim();
    const bucketName = $("new-storage-bucket").value.trim();
    act(async () => {
      await api("CreateStorageConfiguration", { ...(name ? { name } : {}), s3: { bucketName } });
      $("new-storage-name").value = "";
      $("new-storage-bucket").value = "";
    });
  });

  $("storage").tBodies[0].addEventListener("click", (e) => {
    const row = e.target.closest("tr[data-storage-arn]");
    if (!row || !e.target.closest("[data-action=delete-storage]")) return;
    const name = row.cells[0].textContent;
    confirmDialog({ title: "Delete storage configuration?", text: `Delete ${name} (${row.cells[1].textContent})? The bucket and what is in it stay.`, ok: "Delete" }).then((ok) => {
      if (!ok) return;
      act(() => api("DeleteStorageConfiguration", { arn: row.dataset.storageArn }));
    });
  });

  $("create-encoder").addEventListener("submit", (e) => {
    e.preventDefault();
    const input = {};
    const name = $("new-encoder-name").value.trim();
    if (name) input.name = name;
    const fields = ["width", "height", "framerate", "bitrate"];
    const video = encoderVideo(Object.fromEntries(fields.map((f) => [f, $("new-encoder-" + f).value])));
    if (video) input.video = video;
    act(async () => {
      await api("CreateEncoderConfiguration", input);
      for (const f of ["name", ...fields]) $("new-encoder-" + f).value = "";
    });
  });

  $("encoders").tBodies[0].addEventListener("click", (e) => {
    const row = e.target.closest("tr[data-encoder-arn]");
    if (!row || !e.target.closest("[data-action=delete-encoder]")) return;
    const name = row.cells[0].textContent;
    confirmDialog({ title: "Delete encoder configuration?", text: `Delete ${name} (${row.cells[1].textContent})?`, ok: "Delete" }).then((ok) => {
      if (!ok) return;
      act(() => api("DeleteEncoderConfiguration", { arn: row.dataset.encoderArn }));
    });
  });

  $("start-composition").addEventListener("change", (e) => {
    if (e.target.matches("select")) e.target.dataset.touched = "1";
    syncCompositionForm();
  });

  $("start-composition").addEventListener("submit", (e) => {
    e.preventDefault();
    const input = compositionInput({
      stageArn: $("new-composition-stage").value,
      layout: $("new-composition-layout").value,
      featured: $("new-composition-featured").value,
      pipAttribute: $("new-composition-pip-attribute").value,
      pipPosition: $("new-composition-pip-position").value,
      omitStopped: $("new-composition-omit-stopped").checked,
      s3: $("new-composition-s3").checked,
      storageArn: $("new-composition-storage").value,
      s3Encoder: $("new-composition-s3-encoder").value,
      channel: $("new-composition-channel").checked,
      channelArn: $("new-composition-channel-arn").value,
      channelEncoder: $("new-composition-channel-encoder").value,
    });
    const button = $("start-composition-submit");
    act(async () => {
      if (!input.destinations.length) throw new Error("Choose where the composition goes: record to S3, send to a channel, or both.");
      button.disabled = true;
      try {
        const res = await api("StartComposition", input);
        // Show it, even when the list shows another stage's.
        if (compositions.stage && compositions.stage !== input.stageArn) compositions.stage = "";
        select({ composition: resourceId(res.composition.arn) });
      } finally {
        button.disabled = false;
      }
    });
  });

  $("compositions").tBodies[0].addEventListener("click", (e) => {
    const row = e.target.closest("tr[data-composition-id]");
    if (!row || e.target.closest("a")) return;
    if (e.target.closest("[data-action=stop-composition]")) {
      stopComposition(row.dataset.compositionArn);
      return;
    }
    const id = row.dataset.compositionId;
    select({ composition: id === selection.composition ? "" : id });
  });

  $("composition-stop").addEventListener("click", () => {
    if ($("composition-card").dataset.arn) stopComposition($("composition-card").dataset.arn);
  });
  $("composition-close").addEventListener("click", () => select({ composition: "" }));

  $("composition-stage").addEventListener("change", (e) => {
    compositions.stage = e.target.value;
    refresh();
  });

  $("create-ingest").addEventListener("submit", (e) => {
    e.preventDefault();
    const input = { ingestProtocol: $("new-ingest-protocol").value };
    if (input.ingestProtocol === "RTMP") input.insecureIngest = true; // RTMP needs it said
    const name = $("new-ingest-name").value.trim();
    if (name) input.name = name;
    const stageArn = $("new-ingest-stage").value;
    if (stageArn) input.stageArn = stageArn;
    const userId = $("new-ingest-user").value.trim();
    if (userId) input.userId = userId;
    const attributes = parseAttributes($("new-ingest-attributes").value);
    if (Object.keys(attributes).length) input.attributes = attributes;
    if ($("new-ingest-redundant").checked) input.redundantIngest = true;
    act(async () => {
      const res = await api("CreateIngestConfiguration", input);
      for (const id of ["new-ingest-name", "new-ingest-user", "new-ingest-attributes"]) $(id).value = "";
      $("new-ingest-redundant").checked = false;
      await showKey(res.ingestConfiguration);
    });
  });

  $("new-ingest-protocol").addEventListener("change", () => {
    $("new-ingest-insecure").hidden = $("new-ingest-protocol").value !== "RTMP";
  });
  $("new-ingest-stage").addEventListener("change", () => {
    $("new-ingest-stage").dataset.touched = "1";
  });

  $("ingest").tBodies[0].addEventListener("click", (e) => {
    const row = e.target.closest("tr[data-ingest-arn]");
    const button = e.target.closest("[data-action]");
    if (!row || !button) return;
    const arn = row.dataset.ingestArn;
    const c = ingest.configurations.find((x) => x.arn === arn);
    if (!c) return;
    const name = c.name || resourceId(arn);
    const active = c.state === "ACTIVE";
    switch (button.dataset.action) {
    case "show-ingest-key":
      act(async () => showKey((await api("GetIngestConfiguration", { arn })).ingestConfiguration));
      break;
    case "change-ingest-stage": {
      const options = ingest.stages.map((s) => ({ value: s.arn, text: s.name || stageId(s.arn) }));
      if (c.stageArn && !ingest.stages.some((s) => s.arn === c.stageArn)) options.push({ value: c.stageArn, text: stageId(c.stageArn) + " (not found)" });
      options.push({ value: "", text: "No stage" });
      confirmDialog({
        title: "Change stage?",
        text: `Choose the stage the encoder of ${name} publishes to.` +
          (active ? " An encoder publishes with it now: its stage cannot change until the encoder stops." : ""),
        ok: "Change stage", safe: true, choice: { label: "Stage", options, value: c.stageArn || "" },
      }).then((ok) => {
        if (!ok || ok.choice === (c.stageArn || "")) return;
        act(async () => {
          const res = await api("UpdateIngestConfiguration", { arn, stageArn: ok.choice });
          if (shownKey === arn) await showKey(res.ingestConfiguration);
        });
      });
      break;
    }
    case "delete-ingest":
      confirmDialog({
        title: "Delete ingest configuration?",
        text: active
          ? `An encoder publishes with ${name} now. Delete it? Its stream keys stop working; without force the server refuses while the encoder publishes.`
          : `Delete ${name}? Its stream keys stop working.`,
        ok: "Delete", check: active ? "Force: disconnect the encoder" : "",
      }).then((ok) => {
        if (!ok) return;
        act(async () => {
          await api("DeleteIngestConfiguration", { arn, ...(ok.checked ? { force: true } : {}) });
          if (shownKey === arn) hideKey();
        });
      });
      break;
    }
  });

  $("ingest-credentials").addEventListener("click", (e) => {
    const button = e.target.closest("button[data-copy]");
    if (button) copy(button, $(button.dataset.copy));
  });
  $("ingest-key-hide").addEventListener("click", hideKey);

  $("import-key").addEventListener("submit", (e) => {
    e.preventDefault();
    const name = $("new-key-name").value.trim();
    const publicKeyMaterial = $("new-key-material").value.trim() + "\n";
    act(async () => {
      await api("ImportPublicKey", { publicKeyMaterial, ...(name ? { name } : {}) });
      $("new-key-name").value = "";
      $("new-key-material").value = "";
    });
  });

  $("keys").tBodies[0].addEventListener("click", (e) => {
    const row = e.target.closest("tr[data-key-arn]");
    if (!row || !e.target.closest("[data-action=delete-key]")) return;
    const name = row.cells[0].textContent;
    confirmDialog({ title: "Delete public key?", text: `Delete ${name} (${row.cells[1].textContent})? Tokens signed with its private key will no longer join; participants already in a stage stay.`, ok: "Delete" }).then((ok) => {
      if (!ok) return;
      act(() => api("DeletePublicKey", { arn: row.dataset.keyArn }));
    });
  });

  $("replicate").addEventListener("submit", (e) => {
    e.preventDefault();
    const stage = selectedStage();
    const destinationStageArn = $("replicate-to").value;
    if (!stage || !destinationStageArn) return;
    const reconnectWindowSeconds = Number($("replicate-window").value) || 0;
    act(() => api("StartParticipantReplication", { sourceStageArn: stage.arn, destinationStageArn,
      participantId: selection.participant, reconnectWindowSeconds }));
  });

  $("replicas").tBodies[0].addEventListener("click", (e) => {
    const row = e.target.closest("tr[data-destination-arn]");
    const stage = selectedStage();
    if (!row || !stage || !e.target.closest("[data-action=stop-replication]")) return;
    act(() => api("StopParticipantReplication", { sourceStageArn: stage.arn, destinationStageArn: row.dataset.destinationArn,
      participantId: selection.participant }));
  });

  $("sessions").tBodies[0].addEventListener("click", (e) => {
    const row = e.target.closest("tr[data-session-id]");
    if (row && row.dataset.sessionId !== selection.session) select({ session: row.dataset.sessionId, participant: "" });
  });

  $("participants").tBodies[0].addEventListener("click", (e) => {
    const row = e.target.closest("tr[data-participant-id]");
    if (!row) return;
    const id = row.dataset.participantId;
    if (e.target.closest("[data-action=play]")) {
      play(id);
      return;
    }
    if (e.target.closest("[data-action=disconnect]")) {
      const stage = selectedStage();
      const p = view.participants.find((x) => x.participantId === id);
      const name = (p && p.userId) || "(none)";
      const text = p && p.ingestConfigurationArn
        ? `Disconnect ${name} (${id})? The encoder is cut off, and its ingest configuration loses the stage until it is given one again.`
        : `Disconnect ${name} (${id})? Its token is revoked for good.`;
      confirmDialog({ title: "Disconnect participant?", text, ok: "Disconnect", reason: true }).then((ok) => {
        if (!ok || !stage) return;
        act(() => api("DisconnectParticipant", { stageArn: stage.arn, participantId: id, ...(ok.reason ? { reason: ok.reason } : {}) }));
      });
      return;
    }
    select({ participant: id === selection.participant ? "" : id });
  });

  for (const id of ["stages", "sessions", "participants", "compositions"]) {
    $(id).tBodies[0].addEventListener("keydown", (e) => {
      if ((e.key === "Enter" || e.key === " ") && e.target.matches("tr")) {
        e.preventDefault();
        e.target.click();
      }
    });
  }

  $("mint").addEventListener("submit", (e) => {
    e.preventDefault();
    const stage = selectedStage();
    if (!stage) return;
    const input = { stageArn: stage.arn, capabilities: [] };
    const userId = $("mint-user").value.trim();
    if (userId) input.userId = userId;
    const duration = parseInt($("mint-duration").value, 10);
    if (duration) input.duration = duration;
    if ($("mint-publish").checked) input.capabilities.push("PUBLISH");
    if ($("mint-subscribe").checked) input.capabilities.push("SUBSCRIBE");
    const attributes = parseAttributes($("mint-attributes").value);
    if (Object.keys(attributes).length) input.attributes = attributes;
    act(async () => {
      const { participantToken: t } = await api("CreateParticipantToken", input);
      const link = location.origin + "/join?token=" + encodeURIComponent(t.token);
      $("join-link").value = link;
      $("open-link").href = link;
      $("minted-token").value = t.token;
      $("minted-info").textContent = `Participant ${t.participantId}` + (t.userId ? ` (${t.userId})` : "") +
        `, ${(t.capabilities || []).join(" + ") || "no capabilities"}` +
        (t.expirationTime ? `, valid until ${new Date(t.expirationTime).toLocaleString()}` : "") + ".";
      $("minted").hidden = false;
    });
  });

  for (const [button, input] of [["copy-link", "join-link"], ["copy-token", "minted-token"]]) {
    $(button).addEventListener("click", () => copy($(button), $(input)));
  }

  for (const tab of document.querySelectorAll("#tabs [data-tab]")) {
    tab.addEventListener("click", () => {
      if (selection.tab !== tab.dataset.tab) select({ tab: tab.dataset.tab });
    });
  }

  $("dead-letters").tBodies[0].addEventListener("click", (e) => {
    const button = e.target.closest("[data-action=redrive]");
    const row = e.target.closest("tr[data-event-id]");
    if (!button || !row) return;
    button.disabled = true;
    act(async () => {
      try {
        await request("POST", deliveryPaths.redrive, { sink: row.dataset.sink, eventId: row.dataset.eventId });
      } finally {
        button.disabled = false;
      }
    });
  });

  $("load-more").addEventListener("click", () => {
    delivery.pages++;
    refresh();
  });

  $("dead-letter-sink").addEventListener("change", (e) => {
    delivery.sink = e.target.value;
    delivery.pages = 1;
    refresh();
  });

  $("sign-in-form").addEventListener("submit", (e) => {
    e.preventDefault();
    credentials = { accessKeyId: $("access-key-id").value.trim(), secretAccessKey: $("secret-access-key").value.trim() };
    sessionStorage.setItem(credentialsKey, JSON.stringify(credentials));
    $("secret-access-key").value = "";
    start();
  });

  $("player-close").addEventListener("click", () => {
    stopPlaying();
    renderPlayer();
  });

  $("sign-out").addEventListener("click", () => signOut(""));
  window.addEventListener("hashchange", () => {
    actionError = "";
    readSelection();
    render();
    refresh();
  });
}

// --- signing in -----------------------------------------------------------

function signOut(message) {
  stopPlaying();
  hideKey();
  clearInterval(pollTimer);
  pollTimer = 0;
  credentials = null;
  sessionStorage.removeItem(credentialsKey);
  $("app").hidden = true;
  $("tabs").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-error").hidden = !message;
  $("sign-in-error").textContent = message || "";
  setLive("idle", "Signed out");
  $("access-key-id").focus();
}

function start() {
  $("sign-in").hidden = true;
  $("app").hidden = false;
  $("tabs").hidden = false;
  $("sign-out").hidden = config.dev;
  setLive("idle", "Loading…");
  clearInterval(pollTimer);
  pollTimer = setInterval(refresh, pollMs);
  refresh();
}

async function main() {
  wireActions();
  readSelection();
  try {
    const res = await fetch("/console/config.json", { cache: "no-store" });
    config = await res.json();
  } catch {
    showError("The console configuration could not be read; assuming us-east-1.");
  }
  $("region").textContent = config.region;
  $("dev-badge").hidden = !config.dev;
  if (config.dev) {
    credentials = devCredentials;
  } else {
    try {
      credentials = JSON.parse(sessionStorage.getItem(credentialsKey) || "null");
    } catch {
      credentials = null;
    }
  }
  if (credentials && credentials.accessKeyId && credentials.secretAccessKey) start();
  else signOut("");
}

main();
