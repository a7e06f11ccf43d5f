// The join page: /join?token=<participant token>. Everyone in the stage in
// a grid, your camera and microphone published, mute buttons, the state of
// the connection, and why it ended, with a form to join again with a new
// token.

import { Stage, decodeToken, LEFT } from "/client/ivsrt.js";

const $ = (id) => document.getElementById(id);

const stateText = {
  new: "Not connected",
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  disconnected: "Disconnected",
};

// Why the page ended, by the code of the disconnected event.
const endTitles = {
  LEFT: "You left the stage.",
  DISCONNECTED: "You were disconnected.",
  STAGE_NOT_FOUND: "The stage was deleted.",
  REPLACED: "You joined from somewhere else.",
  TOKEN_EXPIRED: "The token has expired.",
  TOKEN_REVOKED: "This token was revoked.",
  TOKEN_INVALID: "The token was refused.",
  TOKEN_MISSING: "No token was given.",
  CONNECTION_FAILED: "Could not connect.",
  CONNECTION_LOST: "The connection was lost.",
};

// Codes after which joining again with the same token may work.
const rejoinable = new Set(["LEFT", "CONNECTION_FAILED", "CONNECTION_LOST", "SHUTTING_DOWN"]);

let stage = null;

// The functions that stop telling the server the size of each remote tile's video.
const sizeWatchers = new WeakMap();

function main() {
  const token = new URLSearchParams(location.search).get("token");
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const value = $("token-input").value.trim();
    if (value) location.search = "?token=" + encodeURIComponent(value);
  });
  if (!token) {
    $("token-form-card").hidden = false;
    return;
  }
  let claims;
  try {
    claims = decodeToken(token);
  } catch (err) {
    notice("This is not a participant token.", err.message, false);
    $("token-form-card").hidden = false;
    return;
  }
  $("stage-label").textContent = "Stage " + (claims.topic || "");
  document.title = (claims.user_id ? claims.user_id + " · " : "") + "Stage " + (claims.topic || "") + " · ivsrt";
  $("rejoin").addEventListener("click", () => location.reload());
  join(token);
}

function join(token) {
  stage = new Stage(token);
  stage.on("connectionstatechange", ({ state }) => setState(state));
  stage.on("joined", ({ sessionId }) => {
    $("stage-label").textContent = "Stage " + (stage.claims.topic || "") + (sessionId ? " · " + sessionId : "");
  });
  stage.on("participantjoined", ({ participant }) => updateTile(participant));
  stage.on("participantupdated", ({ participant }) => updateTile(participant));
  stage.on("participantpublished", ({ participant }) => updateTile(participant));
  stage.on("participantunpublished", ({ participant }) => updateTile(participant));
  stage.on("participantleft", ({ participant }) => removeTile(participant.id));
  stage.on("streamadded", ({ participant, stream }) => attach(participant, stream));
  stage.on("streamremoved", ({ participant, stream }) => detach(participant, stream));
  stage.on("mutechange", () => renderControls());
  // The loudest speaker's tile is outlined; the others who speak, less so.
  stage.on("activespeakers", ({ speakers }) => {
    const rank = new Map(speakers.map((p, i) => [p.id, i]));
    for (const tile of document.querySelectorAll(".tile")) {
      const i = rank.get(tile.dataset.participantId);
      tile.classList.toggle("speaking", i !== undefined);
      tile.classList.toggle("loudest", i === 0);
    }
  });
  stage.on("error", ({ error }) => console.warn("ivsrt:", error.code || "", error.message));
  stage.on("disconnected", ({ code, reason }) => ended(code, reason));

  $("mic").onclick = () => stage.setMicrophoneMuted(!stage.microphoneMuted);
  $("cam").onclick = () => stage.setCameraMuted(!stage.cameraMuted);
  $("leave").onclick = () => stage.leave();
  $("sound").onclick = () => {
    for (const v of document.querySelectorAll(".tile:not([data-local]) video")) {
      v.muted = false;
      v.play().catch(() => {});
    }
    $("sound").hidden = true;
  };
  window.addEventListener("pagehide", () => stage.leave());

  // The local tile shows at once, with the camera as soon as it is on.
  updateTile(stage.localParticipant);
  $("controls").hidden = false;
  renderControls();
  stage.join().catch(() => {}); // the disconnected event tells why
}

function setState(state) {
  $("state").dataset.state = state;
  $("state-text").textContent = stateText[state] || state;
}

// --- tiles ------------------------------------------------------------

function tileOf(id) {
  return document.querySelector(`.tile[data-participant-id="${CSS.escape(id)}"]`);
}

function updateTile(p) {
  let tile = tileOf(p.id);
  if (!tile && p.isLocal) {
    // The local participant's id may have been unknown before joining.
    tile = document.querySelector(".tile[data-local]");
    if (tile) tile.dataset.participantId = p.id;
  }
  if (!tile) {
    tile = document.createElement("figure");
    tile.className = "tile";
    tile.dataset.participantId = p.id;
    if (p.isLocal) tile.dataset.local = "";
    // The picture in a frame shaped like the video, uncropped; the name
    // and status below it, off the picture.
    const frame = document.createElement("div");
    frame.className = "frame";
    const video = document.createElement("video");
    video.autoplay = true;
    video.playsInline = true;
    video.muted = p.isLocal; // never play yourself back
    video.addEventListener("loadedmetadata", () => fitTile(tile, video));
    video.addEventListener("resize", () => fitTile(tile, video));
    const avatar = document.createElement("div");
    avatar.className = "avatar";
    frame.append(video, avatar);
    const caption = document.createElement("figcaption");
    const name = document.createElement("span");
    name.className = "name";
    const status = document.createElement("span");
    status.className = "status";
    caption.append(name, status);
    tile.append(frame, caption);
    const grid = $("grid");
    if (p.isLocal) grid.prepend(tile);
    else grid.append(tile);
    grid.dataset.count = String(grid.children.length);
    // Each remote tile asks for the video at the size it shows it: the
    // server forwards the simulcast layer that fits.
    if (!p.isLocal) sizeWatchers.set(tile, stage.attachVideo(p.id, video));
  }
  const name = p.userId || p.id || "you";
  tile.querySelector(".name").textContent = p.isLocal ? name + " (you)" : name;
  tile.querySelector(".avatar").textContent = initials(name);
  tile.title = p.id ? `${name} · participant ${p.id}` : name;
  tile.dataset.publishing = String(!!p.publishing);
  renderStatus(tile, p);
}

function renderStatus(tile, p) {
  const notes = [];
  if (p.isLocal) {
    if (stage.microphoneMuted) notes.push("muted");
    if (stage.cameraMuted) notes.push("video off");
    if (!stage.localStream && stage.canPublish) notes.push("no camera");
    if (!stage.canPublish) notes.push("watching");
  } else if (!p.publishing) {
    notes.push(p.protocol === "WHIP" ? "connecting" : "not publishing");
  }
  tile.querySelector(".status").textContent = notes.join(" · ");
  const video = tile.querySelector("video");
  const showsVideo = !!video.srcObject && video.srcObject.getVideoTracks().some((t) => t.enabled && t.readyState === "live") &&
    !(p.isLocal && stage.cameraMuted);
  tile.classList.toggle("has-video", showsVideo);
}

// fitTile gives a tile the shape of its video (a camera may be 4:3, 16:9
// or upright, and may turn), or the default shape without one.
function fitTile(tile, video) {
  if (video.srcObject && video.videoWidth > 0 && video.videoHeight > 0) {
    tile.style.setProperty("--aspect", `${video.videoWidth} / ${video.videoHeight}`);
  } else {
    tile.style.removeProperty("--aspect");
  }
}

function attach(p, stream) {
  updateTile(p);
  const tile = tileOf(p.id);
  const video = tile.querySelector("video");
  if (video.srcObject !== stream) video.srcObject = stream;
  video.play().catch((err) => {
    if (err.name !== "NotAllowedError") return; // e.g. interrupted by a newer stream
    // Sound without a click first is not allowed here: play muted and
    // offer to turn the sound on.
    video.muted = true;
    video.play().catch(() => {});
    if (!p.isLocal) $("sound").hidden = false;
  });
  renderStatus(tile, p);
}

function detach(p, stream) {
  const tile = tileOf(p.id);
  if (!tile) return;
  const video = tile.querySelector("video");
  if (video.srcObject === stream) {
    video.srcObject = null;
    fitTile(tile, video);
  }
  if ("publishing" in p) renderStatus(tile, p);
}

function removeTile(id) {
  const tile = tileOf(id);
  if (!tile) return;
  const stop = sizeWatchers.get(tile);
  if (stop) stop();
  tile.querySelector("video").srcObject = null;
  tile.remove();
  $("grid").dataset.count = String($("grid").children.length);
}

function initials(name) {
  const words = String(name).split(/[\s._-]+/).filter(Boolean);
  return (words.length > 1 ? words[0][0] + words[1][0] : String(name).slice(0, 2)).toUpperCase();
}

// --- controls and the end ---------------------------------------------

function renderControls() {
  const mic = $("mic");
  const cam = $("cam");
  const hasAudio = !!stage.localStream && stage.localStream.getAudioTracks().length > 0;
  const hasVideo = !!stage.localStream && stage.localStream.getVideoTracks().length > 0;
  mic.hidden = !hasAudio;
  cam.hidden = !hasVideo;
  mic.textContent = stage.microphoneMuted ? "Unmute" : "Mute";
  mic.setAttribute("aria-pressed", String(stage.microphoneMuted));
  cam.textContent = stage.cameraMuted ? "Start video" : "Stop video";
  cam.setAttribute("aria-pressed", String(stage.cameraMuted));
  const local = stage.localParticipant;
  const tile = document.querySelector(".tile[data-local]");
  if (tile) renderStatus(tile, local);
}

function ended(code, reason) {
  $("controls").hidden = true;
  for (const tile of [...document.querySelectorAll(".tile")]) removeTile(tile.dataset.participantId);
  const title = endTitles[code] || "Disconnected.";
  let text = "";
  if (code === "DISCONNECTED") text = reason ? "Reason: " + reason : "The stage's operator ended your connection.";
  else if (code !== LEFT && reason && reason !== code) text = reason;
  const canRejoin = rejoinable.has(code);
  notice(title, text + (code && code !== LEFT ? ` (${code})` : ""), canRejoin);
  offerNewToken(canRejoin);
}

// offerNewToken shows the form for a token, to join again after the end:
// an expired or revoked token, or one whose participant was disconnected,
// cannot join again, but a new one can.
function offerNewToken(canRejoin) {
  $("token-form-title").textContent = canRejoin ? "Join with another token" : "Join again";
  $("token-form-text").textContent = canRejoin
    ? "Or paste another participant token."
    : "Paste a new participant token (from CreateParticipantToken or the console) to join again.";
  $("token-input").value = "";
  $("token-form-card").hidden = false;
}

function notice(title, text, canRejoin) {
  $("notice").hidden = false;
  $("notice-title").textContent = title;
  $("notice-text").textContent = text;
  $("rejoin").hidden = !canRejoin;
}

main();
